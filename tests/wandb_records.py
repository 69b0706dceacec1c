"""Reads back what W&B wrote offline: the .wandb file is a LevelDB-style log of protobuf Records."""
from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32768, 7  # log block size; each chunk has crc32 (4), length (2), type (1)
FULL, FIRST, LAST = 1, 2, 4


def read_records(path: Path) -> list[pb.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos = [], b"", 7  # the file opens with a 7-byte W&B header
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if length == 0 and kind == 0:  # zero padding up to the block's end
            pos += room
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def run_contents(run_dir: Path) -> dict:
    """History rows, config, group, name, job type, metric definitions and exit code of one offline run."""
    (path,) = run_dir.glob("run-*.wandb")
    out = {"history": [], "config": {}, "metrics": {}, "exit_code": None}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        elif kind == "run":
            out["group"], out["name"], out["job_type"] = record.run.run_group, record.run.display_name, record.run.job_type
        elif kind == "config":
            out["config"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.config.update})
        elif kind == "metric":
            out["metrics"][record.metric.glob_name or record.metric.name] = record.metric.step_metric
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out
