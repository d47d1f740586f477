"""A Hugging Face `transformers` causal LM run in this process: no server, no key.

A card names a local folder written by `save_pretrained` (relative to the working
directory) or a model id on the Hub (downloaded once by `transformers` into its own cache):

    provider: transformers
    model: ./models/my-judge        # or Qwen/Qwen2.5-0.5B-Instruct
    max_tokens: 256
    temperature: null               # null: the model's own generation_config; 0: greedy

`validate` checks the folder: a `model` written as a path (it starts with `/`, `.` or `~`,
or has more than one `/`) must be a folder holding a `config.json`; `org/name` that is no
folder here is taken for a Hub id.

The weights are loaded once, on the first call, on the first CUDA or MPS device there is
(else the CPU); calls that arrive meanwhile wait for that one load. Generations run one at
a time, in one worker thread per model and one at a time across models (a model on one
device gains nothing from concurrent generate() calls, its caches are not thread-safe, and
the seed is torch's global one), so `max_concurrency` only queues them. The card's
`timeout_s` counts the generation alone, not the wait in that queue nor the load: a call
whose generation reaches it is stopped there and fails with `timeout` (and is retried like
any timeout). Each call is seeded from the request, so a run is reproducible on the same
hardware and library versions, which is why the run identity records them: the sha256 of
every file in the folder (weights, tokenizer, config; cached by path, size and mtime, see
oversight/model/filehash.py), the torch and transformers versions and the device. A Hub id
is identified by its name only. Text only; no log-probabilities. Install with
`pip install 'oversight[transformers]'`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
import transformers

from oversight.errors import OversightError
from oversight.model.api import Capabilities, ModelAPI
from oversight.model.card import ModelCard
from oversight.model.filehash import folder_sha256
from oversight.model.types import GenerateRequest, GenerateResponse, ImagePart, ModelCallError, Usage

# Held for each generation, by every in-process model: torch's random generator is global.
_GENERATING = threading.Lock()


def local_folder(model: str) -> Path | None:
    folder = Path(model).expanduser()
    return folder if folder.is_dir() else None


def _written_as_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model


def _device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _device_name(device: str) -> str:
    # The kind of GPU matters too: kernels and so the sampled tokens differ between them.
    return f"cuda ({torch.cuda.get_device_name(0)})" if device == "cuda" else device


class TransformersAPI(ModelAPI):
    provider: ClassVar[str] = "transformers"
    default_capabilities: ClassVar[Capabilities] = Capabilities(images=False, logprobs=False)
    default_base_url: ClassVar[str | None] = None
    default_key_env: ClassVar[str | None] = None
    times_itself: ClassVar[bool] = True

    @classmethod
    def check_card(cls, card: ModelCard, where: str) -> None:
        folder = Path(card.model).expanduser()
        fix = ("Give the folder a model was saved to with `save_pretrained` (a relative one is read from the "
               f"working directory, {Path.cwd()}), or a Hugging Face Hub id such as "
               "HuggingFaceTB/SmolLM2-135M-Instruct.")
        if folder.is_dir():
            if not (folder / "config.json").is_file():
                raise OversightError(
                    f"{where}: model: {card.model} (provider transformers) is the folder {folder.resolve()}, which "
                    f"holds no config.json, so it is not a model saved by `save_pretrained`. {fix}")
        elif _written_as_path(card.model) or folder.exists():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise OversightError(
                f"{where}: model: {card.model} (provider transformers) names the folder {folder.absolute()}, "
                f"which {what}. {fix}")

    @classmethod
    def run_identity(cls, card: ModelCard) -> dict[str, Any]:
        folder = local_folder(card.model)
        return {
            "weights_sha256": folder_sha256(folder) if folder is not None else None,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": _device_name(_device()),
        }

    def __init__(self, card: ModelCard, api_key: str | None, http_client: Any = None) -> None:
        super().__init__(card, api_key, http_client)
        # Part of every cache key (an instance value: the wrapper reads it from the instance),
        # so replies of other weights or library versions are never served from the cache.
        blob = json.dumps(self.run_identity(card), sort_keys=True).encode()
        self.cache_version = hashlib.sha256(blob).hexdigest()[:16]  # type: ignore[misc]
        self._model: Any = None
        self._tokenizer: Any = None
        self._guard = threading.Lock()  # over _worker and _loading, which calls on any event loop share
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._loading: concurrent.futures.Future[None] | None = None

    def _submit(self, fn: Any, *args: Any) -> concurrent.futures.Future[Any]:
        """Run fn in this model's one worker thread: calls queue there without holding a thread each."""
        with self._guard:
            if self._worker is None:
                self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="oversight-transformers")
            if self._loading is None:
                self._loading = self._worker.submit(self._load)
            return self._worker.submit(fn, *args)

    async def generate(self, request: GenerateRequest) -> GenerateResponse:
        if any(isinstance(p, ImagePart) for m in request.messages for p in m.parts):
            raise ModelCallError("bad_request", f"{self.card.label} (transformers) reads text only")
        job = self._submit(self._generate, request)
        loading = self._loading
        assert loading is not None
        try:
            try:
                # One load for all: a caller that stops waiting (cancelled) must not cancel it.
                await asyncio.shield(asyncio.wrap_future(loading))
            except BaseException:
                job.cancel()  # a failed load fails every call; a cancelled caller needs no reply
                raise
            texts, usage, seconds = await asyncio.wrap_future(job)
        except ModelCallError:
            raise
        except torch.cuda.OutOfMemoryError as exc:
            raise ModelCallError("server", f"out of device memory: {exc}") from None
        except (RuntimeError, ValueError) as exc:
            raise ModelCallError("other", f"{type(exc).__name__}: {exc}") from None
        return GenerateResponse(texts=texts, usage=usage, latency_s=seconds)

    def _load(self) -> None:
        folder = local_folder(self.card.model)
        name = str(folder) if folder is not None else self.card.model
        # transformers 5 calls it `dtype`; 4.x `torch_dtype`.
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        try:
            tokenizer: Any = transformers.AutoTokenizer.from_pretrained(name)
            model: Any = transformers.AutoModelForCausalLM.from_pretrained(name, **{dtype_key: "auto"})
        except OSError as exc:
            # Not found locally or on the Hub: every call would fail the same way.
            raise ModelCallError("not_found", f"cannot load {name!r}: {exc}") from None
        model.to(_device())
        model.eval()
        self._tokenizer, self._model = tokenizer, model

    def _prompt_ids(self, request: GenerateRequest) -> Any:
        tok = self._tokenizer
        messages = [{"role": m.role, "content": m.plain_text} for m in request.messages]
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        # A base model without a chat template: the roles as plain labels.
        text = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages) + "assistant:"
        return tok(text, return_tensors="pt")["input_ids"]

    def _settings(self, request: GenerateRequest) -> dict[str, Any]:
        temperature = request.temperature if request.temperature is not None else self.card.temperature
        config = self._model.generation_config
        if temperature is None:
            # The model's own defaults, except that n > 1 independent samples need sampling.
            return {"do_sample": True} if request.n > 1 and not config.do_sample else {}
        if temperature == 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": temperature}

    def _generate(self, request: GenerateRequest) -> tuple[list[str], Usage, float]:
        tok, model = self._tokenizer, self._model
        ids = self._prompt_ids(request)
        max_new = request.max_tokens or self.card.max_tokens
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if limit and ids.shape[1] + max_new > limit:
            raise ModelCallError(
                "bad_request",
                f"prompt of {ids.shape[1]} tokens plus max_tokens {max_new} exceeds the model's context of {limit}",
            )
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        identity = [request.messages_payload(), request.seed, request.replicate, request.sample]
        seed = int(hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:8], 16)
        limit_s = self.card.timeout_s
        with _GENERATING, torch.no_grad():
            start = time.perf_counter()  # the clock starts here: not in the queue, not at the load
            torch.manual_seed(seed)  # under the lock: the global generator is shared
            out = model.generate(
                ids.to(model.device),
                attention_mask=torch.ones_like(ids).to(model.device),
                max_new_tokens=max_new,
                num_return_sequences=request.n,
                pad_token_id=pad,
                max_time=limit_s,  # checked after each token
                **self._settings(request),
            )
            seconds = time.perf_counter() - start
        if seconds >= limit_s:
            raise ModelCallError("timeout", f"generation stopped at the card's timeout_s of {limit_s:g}s "
                                            f"({out.shape[1] - ids.shape[1]} of at most {max_new} tokens)")
        new = out[:, ids.shape[1]:]
        texts, produced = [], 0
        for row in new:
            tokens = row.tolist()
            # Count up to and including the end-of-sequence token; padding after it is not output.
            if tok.eos_token_id is not None and tok.eos_token_id in tokens:
                tokens = tokens[: tokens.index(tok.eos_token_id) + 1]
            produced += len(tokens)
            texts.append(tok.decode(tokens, skip_special_tokens=True).strip())
        return texts, Usage(int(ids.shape[1]), produced), seconds

    async def aclose(self) -> None:
        with self._guard:
            worker, self._worker, self._loading = self._worker, None, None
        if worker is not None:
            # Queued calls are dropped; a generation under way ends in its thread.
            worker.shutdown(wait=False, cancel_futures=True)
        self._model = self._tokenizer = None
