"""Reward-model and DPO throughput through our runners on whatever accelerator is present.

Real preference data (Anthropic HH-RLHF harmless-base test split, MIT) in the export's TRL format,
a ~110M-parameter Llama built locally (no hub), then training/runners/reward.py and dpo.py exactly
as a GPU worker runs them. Prints tokens/s, wall time and peak GPU memory of each, and the ratio
against the same runs with bf16 off (fp32) in the same process.

    python bench/gpu_training.py --hh path/to/harmless-base_test.jsonl.gz [--pairs 1024] [--steps 60]
"""

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", TRL_EXPERIMENTAL_SILENCE="1")

MARK = "\n\nAssistant:"


def hh_pairs(path: Path, n: int) -> list[dict]:
    """HH dialogues share everything up to the last assistant turn: that is the prompt."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            item = json.loads(line)
            cut = item["chosen"].rfind(MARK) + len(MARK)
            prompt, chosen, rejected = item["chosen"][:cut], item["chosen"][cut:].strip(), item["rejected"][cut:].strip()
            if not chosen or not rejected or chosen == rejected or not item["rejected"].startswith(prompt):
                continue
            rows.append({"prompt": prompt.strip(), "chosen": chosen, "rejected": rejected, "margin": 1.0,
                         "pair_id": i, "vote_split": {"chosen": 2, "rejected": 1, "tie": 0}})
            if len(rows) >= n:
                break
    return rows


def build_models(work: Path, texts: list[str]) -> tuple[str, str]:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification, PreTrainedTokenizerFast

    from training.runners.tiny_models import tokenizer_ensure_special_tokens

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=8000, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
                               "{% if add_generation_prompt %}assistant: {% endif %}")
    tokenizer_ensure_special_tokens(tokenizer)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=1024,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    paths = []
    for name, cls in (("policy", LlamaForCausalLM), ("reward", LlamaForSequenceClassification)):
        model = cls(config if name == "policy" else LlamaConfig(**{**config.to_dict(), "num_labels": 1}))
        out = work / name
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        paths.append(str(out))
        n_params = sum(p.numel() for p in model.parameters())
    print(f"model: Llama {n_params / 1e6:.0f}M parameters, vocab {len(tokenizer)}")
    return paths[0], paths[1]


def run_kind(kind: str, base_model: str, data_dir: Path, work: Path, params: dict) -> dict:
    import torch

    from training.configs import params_resolve
    from training.runners import dpo, reward
    from training.runners.common import RunContext

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    ctx = RunContext(kind=kind, data_dir=data_dir, output_dir=work / f"out-{kind}-{time.time_ns()}",
                     config=params_resolve(kind=kind, params=params), base_model=base_model)
    start = time.perf_counter()
    result = (reward if kind == "reward_model" else dpo).run(ctx)
    m = result.final_metrics
    return {"wall_s": round(time.perf_counter() - start, 1), "tokens_per_second": m.get("tokens_per_second"),
            "gpu_peak_memory_gb": m.get("gpu_peak_memory_gb"), "device": m.get("device"),
            "heldout_accuracy": m.get("heldout_accuracy"), "loss": m.get("train_loss")}


def datasets_fingerprint_workaround() -> None:
    """Some images pair `datasets` with a pyarrow/dill that cannot pickle pyarrow's MonthDayNano
    type, so hashing any Dataset for its cache fingerprint fails. The fingerprint only names cache
    files; a random one is harmless for a benchmark. Applied only where the failure shows."""
    import pickle
    import uuid

    import datasets
    from datasets.fingerprint import Hasher

    try:
        datasets.Dataset.from_dict({"probe": [1]})
    except pickle.PicklingError:
        original = Hasher.hash.__func__

        def hash_or_random(cls, value):
            try:
                return original(cls, value)
            except pickle.PicklingError:
                return uuid.uuid4().hex

        Hasher.hash = classmethod(hash_or_random)
        print("note: datasets cannot fingerprint here (pyarrow/dill pickling); unpicklable values get random fingerprints")


def main() -> None:
    import torch

    datasets_fingerprint_workaround()

    parser = argparse.ArgumentParser()
    parser.add_argument("--hh", required=True)
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clinpref-gpu-"))
    rows = hh_pairs(Path(opts.hh), opts.pairs)
    cut = int(len(rows) * 0.9)
    data_dir = work / "data"
    data_dir.mkdir()
    for name, part in (("train.jsonl", rows[:cut]), ("test.jsonl", rows[cut:])):
        (data_dir / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    policy, reward_base = build_models(work, [r["prompt"] + r["chosen"] + r["rejected"] for r in rows])
    print(f"data: {cut} train / {len(rows) - cut} held-out HH-RLHF pairs; device: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}")
    common = {"max_steps": opts.steps, "per_device_train_batch_size": opts.batch_size, "max_length": 512}
    results = {}
    for precision, bf16 in (("bf16", True), ("fp32", False)):
        if bf16 and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
            continue
        results[("reward_model", precision)] = run_kind("reward_model", reward_base, data_dir, work,
                                                        {**common, "bf16": bf16, "early_stopping_patience": 0})
        results[("dpo", precision)] = run_kind("dpo", policy, data_dir, work, {**common, "bf16": bf16})
    print(f"\n{'run':<14}{'precision':<10}{'tokens/s':>12}{'wall s':>9}{'peak GPU GB':>13}{'held-out acc':>14}")
    for (kind, precision), r in results.items():
        print(f"{kind:<14}{precision:<10}{r['tokens_per_second'] or 0:>12,.0f}{r['wall_s']:>9}{r['gpu_peak_memory_gb'] or 0:>13}"
              f"{(r['heldout_accuracy'] if r['heldout_accuracy'] is not None else float('nan')):>14.3f}")
    for kind in ("reward_model", "dpo"):
        if (kind, "bf16") in results and results[(kind, "fp32")]["tokens_per_second"]:
            ratio = results[(kind, "bf16")]["tokens_per_second"] / results[(kind, "fp32")]["tokens_per_second"]
            print(f"{kind}: bf16 / fp32 throughput ratio {ratio:.2f}x")
    print(json.dumps({f"{k}/{p}": v for (k, p), v in results.items()}))


if __name__ == "__main__":
    main()
