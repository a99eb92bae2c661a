"""Continuous batching on llama.cpp's low-level API: several sequences decode in one batch.

A tiny model on a CPU spends most of a decoding step on fixed costs, so stepping N sequences
together costs far less than N single steps. Requests that share a prompt prefix (every
request of one template does) reuse its KV entries: recent fully processed prompts are kept
in a few reserved sequences (one per template in practice, least recently used replaced) and
the longest common prefix is copied into each new sequence.

Constrained (JSON-schema) requests check the grammar after sampling, as llama.cpp's own
common sampler does: the token drawn from the unconstrained chain (top-k first, so a step
looks at 40 candidates, not Gemma's 262k-token vocabulary) is tested against the grammar
alone, and only a rejected token costs a full pass of the grammar over the vocabulary,
followed by the same chain on what is left. The drawn token always satisfies the grammar;
``grammar_first=True`` keeps the old order (grammar over the vocabulary at every step) as
the baseline of ``benchmarks/grammar_sampling.py``.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np

from personahub_assets.lib.synthesis.generation import GenerationRequest, GenerationResult
from personahub_assets.resources.backends.llamacpp_sampling import MIN_P, TOP_K, json_gbnf

_MIN_SHARED_PREFIX = 16


@dataclass
class _Slot:
    index: int
    request: GenerationRequest
    prompt: list[int]
    sampler: Any
    grammar: Any = None
    pos: int = 0
    to_feed: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)
    batch_row: int = -1


class BatchedLlamaCpp:
    """Generates many requests at once on one llama.cpp context with ``n_parallel`` sequences."""

    def __init__(self, llm, n_parallel: int = 8, n_ctx_per_seq: int = 2048, n_threads: int = 2,
                 n_batch: int = 2048, n_prefixes: int = 4, grammar_first: bool = False):
        self.llm = llm
        self.grammar_first = grammar_first
        self.grammar_stats = {"checked": 0, "resampled": 0}
        self.n_parallel = n_parallel
        self.n_ctx_per_seq = n_ctx_per_seq
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_per_seq * (n_parallel + n_prefixes)
        params.n_batch = n_batch
        params.n_ubatch = min(512, n_batch)
        params.n_seq_max = n_parallel + n_prefixes  # the last ones hold shared prefixes
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = True  # sequences share one buffer, so prefixes can be copied
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create the batched context")
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        # Reserved sequences holding recent prompts, most recently used last.
        self.prefixes: list[tuple[int, list[int]]] = [(n_parallel + i, [])
                                                      for i in range(n_prefixes)]
        self._token_cache: dict[int, tuple[GenerationRequest, list[int]]] = {}
        # Candidate arrays for the grammar: one token (the check) and the whole vocabulary
        # (a resample), allocated once; numpy views fill the latter without a Python loop.
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_arr = llama_cpp.llama_token_data_array(
            data=self._one, size=1, selected=-1, sorted=False)
        self._all = (llama_cpp.llama_token_data * self.n_vocab)()
        self._all_view = np.frombuffer(self._all, dtype=np.dtype(
            [("id", np.int32), ("logit", np.float32), ("p", np.float32)]))
        self._ids = np.arange(self.n_vocab, dtype=np.int32)

    def close(self) -> None:
        """Free the context and the batch."""
        if self.ctx:
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None

    def __del__(self):
        # At interpreter shutdown the bindings, and even this module's globals, may already
        # be gone, so nothing here may rely on them.
        try:  # noqa: SIM105 - contextlib may be gone at exit
            self.close()
        except Exception:
            pass

    def _grammar(self, request: GenerationRequest):
        gbnf = json_gbnf(request.json_schema)
        grammar = llama_cpp.llama_sampler_init_grammar(self.vocab, gbnf.encode(), b"root")
        if not grammar:
            raise ValueError("llama.cpp could not build a grammar from the request's schema")
        return grammar

    def _sampler(self, request: GenerationRequest, grammar=None):
        """The sampling chain; with ``grammar`` it runs first (the baseline order)."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if grammar is not None:
            llama_cpp.llama_sampler_chain_add(chain, grammar)
        if request.temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            # top-k first, as llama-cpp-python's high-level API does: it keeps top-p from
            # sorting the whole 262k-token vocabulary at every step.
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_k(TOP_K))
            llama_cpp.llama_sampler_chain_add(chain,
                                              llama_cpp.llama_sampler_init_top_p(request.top_p, 1))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_min_p(MIN_P, 1))
            llama_cpp.llama_sampler_chain_add(chain,
                                              llama_cpp.llama_sampler_init_temp(request.temperature))
            llama_cpp.llama_sampler_chain_add(chain,
                                              llama_cpp.llama_sampler_init_dist(request.seed))
        return chain

    def _sample(self, slot: _Slot) -> int:
        """The next token of ``slot``: drawn, then checked against its grammar if it has one."""
        token = llama_cpp.llama_sampler_sample(slot.sampler, self.ctx, slot.batch_row)
        if slot.grammar is None:
            return token
        self.grammar_stats["checked"] += 1
        one = self._one[0]
        one.id, one.logit, one.p = token, 1.0, 0.0
        self._one_arr.size, self._one_arr.selected, self._one_arr.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(self._one_arr))
        if math.isinf(self._one[0].logit):
            # Rejected: the grammar masks the whole vocabulary, the chain draws again.
            self.grammar_stats["resampled"] += 1
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits_ith(self.ctx, slot.batch_row), shape=(self.n_vocab,))
            view = self._all_view
            view["id"], view["logit"], view["p"] = self._ids, logits, 0.0
            arr = llama_cpp.llama_token_data_array(data=self._all, size=self.n_vocab,
                                                   selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(slot.grammar, ctypes.byref(arr))
            llama_cpp.llama_sampler_apply(slot.sampler, ctypes.byref(arr))
            if arr.selected < 0:
                raise RuntimeError("the grammar left no token to sample")
            token = arr.data[arr.selected].id
        llama_cpp.llama_sampler_accept(slot.grammar, token)
        return token

    def _tokens(self, request: GenerationRequest) -> list[int]:
        key = id(request)
        if self._token_cache.get(key, (None,))[0] is not request:
            tokens = self.llm.tokenize(request.completion_prompt.encode("utf-8"), special=True)
            self._token_cache[key] = (request, tokens)
        return self._token_cache[key][1]

    def _best_prefix(self, tokens: list[int]) -> tuple[int, int]:
        """(position in ``self.prefixes``, tokens shared) of the longest common prefix."""
        best, best_len = 0, -1
        for pos, (_, cached) in enumerate(self.prefixes):
            shared = 0
            for a, b in zip(tokens, cached, strict=False):
                if a != b:
                    break
                shared += 1
            if shared > best_len:
                best, best_len = pos, shared
        return best, best_len

    def _shared_prefix(self, request: GenerationRequest) -> int:
        return self._best_prefix(self._tokens(request))[1]

    def _remember_prefix(self, tokens: list[int], seq: int) -> None:
        """Keep a processed prompt: replace the entry it extends most, or the oldest one."""
        pos, shared = self._best_prefix(tokens)
        if shared < _MIN_SHARED_PREFIX:
            pos = 0  # least recently used
        prefix_seq, _ = self.prefixes.pop(pos)
        llama_cpp.llama_memory_seq_rm(self.mem, prefix_seq, -1, -1)
        llama_cpp.llama_memory_seq_cp(self.mem, seq, prefix_seq, 0, len(tokens))
        self.prefixes.append((prefix_seq, tokens))

    def _admit(self, index: int, request: GenerationRequest, seq: int) -> _Slot:
        prompt = self._tokens(request)
        self._token_cache.pop(id(request), None)
        if len(prompt) + request.max_tokens > self.n_ctx_per_seq:
            raise ValueError(f"prompt of {len(prompt)} tokens + {request.max_tokens} new tokens "
                             f"exceeds the context of {self.n_ctx_per_seq}")
        llama_cpp.llama_memory_seq_rm(self.mem, seq, -1, -1)
        pos, shared = self._best_prefix(prompt)
        # The last prompt token must be decoded to get logits.
        shared = min(shared, len(prompt) - 1)
        if shared >= _MIN_SHARED_PREFIX:
            prefix = self.prefixes.pop(pos)
            self.prefixes.append(prefix)  # most recently used
            llama_cpp.llama_memory_seq_cp(self.mem, prefix[0], seq, 0, shared)
        else:
            shared = 0
        grammar = self._grammar(request) if request.json_schema is not None else None
        if self.grammar_first and grammar is not None:
            sampler, grammar = self._sampler(request, grammar), None  # the chain owns it
        else:
            sampler = self._sampler(request)
        return _Slot(index=index, request=request, prompt=prompt, sampler=sampler,
                     grammar=grammar, pos=shared, to_feed=prompt[shared:])

    def _add(self, row: int, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self.batch
        b.token[row] = token
        b.pos[row] = pos
        b.n_seq_id[row] = 1
        b.seq_id[row][0] = seq
        b.logits[row] = logits

    def _finish(self, slot: _Slot, seq: int, text: str, reason: str) -> GenerationResult:
        llama_cpp.llama_sampler_free(slot.sampler)
        if slot.grammar is not None:
            llama_cpp.llama_sampler_free(slot.grammar)
        llama_cpp.llama_memory_seq_rm(self.mem, seq, -1, -1)
        return GenerationResult(
            text=slot.request.response_prefix + text, finish_reason=reason,
            prompt_tokens=len(slot.prompt), completion_tokens=len(slot.generated),
            latency_s=time.perf_counter() - slot.start)

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Results in request order; a request that cannot run gets an errored result."""
        results: list[GenerationResult | None] = [None] * len(requests)
        pending = deque(enumerate(requests))
        slots: dict[int, _Slot] = {}
        while pending or slots:
            self._admit_pending(pending, slots, results)
            if not slots:
                continue
            self.batch.n_tokens = self._fill_batch(slots)
            status = llama_cpp.llama_decode(self.ctx, self.batch)
            if status != 0:
                for seq, slot in list(slots.items()):
                    results[slot.index] = self._finish(slot, seq, "", "error")
                    results[slot.index].error = f"llama_decode failed with status {status}"
                    del slots[seq]
                continue
            self._sample_slots(slots, results)
        return [r for r in results if r is not None]

    def _admit_pending(self, pending: deque[tuple[int, GenerationRequest]],
                       slots: dict[int, _Slot], results: list[GenerationResult | None]
                       ) -> None:
        """Move waiting requests into free sequences; one that cannot start is errored."""
        for seq in range(self.n_parallel):
            if seq in slots or not pending:
                continue
            index, request = pending[0]
            cold = self._shared_prefix(request) < _MIN_SHARED_PREFIX
            if cold and any(not s.generated for s in slots.values()):
                # Wait until the prompt being prefilled is cached and can be shared.
                return
            pending.popleft()
            try:
                slots[seq] = self._admit(index, request, seq)
            except Exception as exc:  # one bad item never fails the batch
                results[index] = GenerationResult(text="", finish_reason="error",
                                                  error=f"{type(exc).__name__}: {exc}")
            if cold:
                return

    def _fill_batch(self, slots: dict[int, _Slot]) -> int:
        """Put the next tokens of every slot into the batch; returns its number of rows."""
        rows = 0
        # Generating sequences first (one token each), then prompt chunks fill the rest.
        for seq, slot in slots.items():
            slot.batch_row = -1
            if not slot.to_feed:
                self._add(rows, slot.generated[-1], slot.pos, seq, True)
                slot.batch_row, slot.pos, rows = rows, slot.pos + 1, rows + 1
        for seq, slot in slots.items():
            if not slot.to_feed or rows >= self.n_batch:
                continue
            take = min(len(slot.to_feed), self.n_batch - rows)
            for k in range(take):
                last = k == take - 1 and take == len(slot.to_feed)
                self._add(rows, slot.to_feed[k], slot.pos + k, seq, last)
                if last:
                    slot.batch_row = rows
                rows += 1
            slot.pos += take
            slot.to_feed = slot.to_feed[take:]
        return rows

    def _sample_slots(self, slots: dict[int, _Slot], results: list[GenerationResult | None]
                      ) -> None:
        """After a decode: the next token of every slot that has logits, and the results of
        the slots that are done (their sequences freed)."""
        for seq, slot in list(slots.items()):
            if slot.batch_row < 0:
                continue
            if not slot.generated and len(slot.prompt) >= _MIN_SHARED_PREFIX:
                # The whole prompt is in the cache now: keep it for later requests.
                self._remember_prefix(slot.prompt, seq)
            try:
                token = self._sample(slot)
            except Exception as exc:  # one bad item never fails the batch
                results[slot.index] = self._finish(slot, seq, "", "error")
                results[slot.index].error = f"{type(exc).__name__}: {exc}"
                del slots[seq]
                continue
            done, reason = False, "stop"
            if llama_cpp.llama_vocab_is_eog(self.vocab, token):
                done = True
            else:
                slot.generated.append(token)
            text = self.llm.detokenize(slot.generated).decode("utf-8", errors="ignore")
            # A grammar ends the output where the JSON value ends; a stop sequence such
            # as a blank line could only cut the value short, so it does not apply.
            for stop in (() if slot.request.json_schema is not None
                         else slot.request.stop):
                cut = text.find(stop)
                if stop and cut >= 0:
                    text, done = text[:cut], True
            if not done and len(slot.generated) >= slot.request.max_tokens:
                done, reason = True, "length"
            if done:
                results[slot.index] = self._finish(slot, seq, text, reason)
                del slots[seq]
