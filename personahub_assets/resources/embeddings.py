"""The embedding resource: which encoder turns personas into vectors for embedding dedup.

``static`` (default) is the model2vec model distilled once from the packaged all-MiniLM-L6-v2:
tens of thousands of personas per second on two CPU cores. ``minilm`` is the packaged MiniLM
itself through sentence-transformers (the reference; about a hundred times slower on CPU).
``openai`` is any server speaking the OpenAI ``/v1/embeddings`` protocol; its key is read
through a Dagster ``EnvVar`` only.
"""

from dagster import ConfigurableResource
from pydantic import Field

from personahub_assets.lib.curation.encoders import Encoder, make_encoder

ENCODERS = ("static", "minilm", "openai")


class EmbeddingsResource(ConfigurableResource):
    """Sentence embeddings of personas, from a local model or an embeddings server."""

    encoder: str = Field(default="static", description="static, minilm or openai.")
    model_dir: str = Field(default="", description="Static model folder (default: the "
                           "user cache, distilled by `make install`).")
    base_url: str = Field(default="", description="OpenAI-compatible server root, e.g. "
                          "http://127.0.0.1:8000/v1 (encoder=openai).")
    model: str = Field(default="", description="Embedding model name sent to the server.")
    api_key: str = Field(default="", description="Bearer key; set only through an EnvVar.")
    batch_size: int = Field(default=256, description="Texts per request (encoder=openai).")
    languages: str = Field(default="", description="Languages the encoder was trained on, "
                           "comma-separated ISO 639-1 codes; personas in others are left to "
                           "MinHash. Empty: English for the packaged models, all for a model "
                           "folder or a server you point to.")

    def build(self) -> Encoder:
        """A ready encoder for these settings."""
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown embeddings encoder {self.encoder!r}; "
                             f"choose one of {', '.join(ENCODERS)}")
        languages = [c.strip() for c in self.languages.split(",") if c.strip()] or None
        if self.encoder == "static":
            return make_encoder("static", model_dir=self.model_dir or None,
                                use_multiprocessing=False, languages=languages)
        if self.encoder == "minilm":
            return make_encoder("minilm", model_path=self.model_dir or None,
                                languages=languages)
        return make_encoder("openai", base_url=self.base_url, model=self.model,
                            api_key=self.api_key, batch_size=self.batch_size,
                            languages=languages)

    def describe(self) -> str:
        """Encoder name for metadata and logs (never the key)."""
        if self.encoder == "openai":
            return f"openai:{self.model}"
        return self.encoder
