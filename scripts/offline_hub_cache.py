"""Put a diffusers model folder into a Hugging Face hub cache under a real model id, as a download
would, so that code asking for that id loads it offline (HF_HUB_OFFLINE=1) with no network.

    python scripts/offline_hub_cache.py HF_HOME                 # the kit's tiny model
    python scripts/offline_hub_cache.py HF_HOME --random-sd21   # SD 2.1-base's architecture,
                          # random weights (benchmark_sds_step.py's; seconds on a GPU)
    python scripts/offline_hub_cache.py HF_HOME --folder DIR    # any diffusers folder

It writes HF_HOME/hub/models--ORG--NAME/snapshots/REVISION/ (the folder's files) and
HF_HOME/hub/models--ORG--NAME/refs/main (REVISION), for the id --repo (default: the notebook's
model on a GPU, sdskit.loading.MODEL_IDS["2.1"]). Then run the notebook as a student's GPU would,
on the real model id, offline:

    HF_HOME=HF_HOME HF_HUB_OFFLINE=1 python scripts/run_notebooks.py solutions --out build/gpu

(on a GPU, the notebook's choose_model picks the real id; its pictures are noise with random
weights, and everything else runs as it would with the real ones). tests/test_loading.py uses it
to check, on the CPU, that loading a cached model this way prints nothing but the kit's output.
"""

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from sdskit.loading import MODEL_IDS  # noqa: E402
from sdskit.paths import TINY_SD  # noqa: E402

# a revision in the hub's format (40 hex digits); any fixed one will do
REVISION = hashlib.sha1(b"sdskit offline hub cache").hexdigest()


def write_cache(folder, hf_home, repo=MODEL_IDS["2.1"]) -> Path:
    """Copy the diffusers folder `folder` into the hub cache of `hf_home` as `repo`'s main
    revision; returns the snapshot folder."""
    models = Path(hf_home) / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = models / "snapshots" / REVISION
    if snapshot.exists():
        shutil.rmtree(snapshot)
    shutil.copytree(folder, snapshot)
    (models / "refs").mkdir(parents=True, exist_ok=True)
    (models / "refs" / "main").write_text(REVISION)
    return snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hf_home", type=Path, help="the HF_HOME to write (made if missing)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--folder", type=Path, help="a diffusers model folder")
    source.add_argument("--random-sd21", action="store_true",
                        help="SD 2.1-base's architecture with random weights")
    parser.add_argument("--repo", default=MODEL_IDS["2.1"], help="the model id to cache it as")
    args = parser.parse_args()
    if args.random_sd21:
        import torch

        from scripts.benchmark_sds_step import MODELS, write_random_model
        device = "cuda" if torch.cuda.is_available() else "cpu"
        with tempfile.TemporaryDirectory() as folder:
            model = write_random_model(MODELS["SD 2.1-base"], Path(folder) / "model", device)
            snapshot = write_cache(model, args.hf_home, args.repo)
    else:
        snapshot = write_cache(args.folder or TINY_SD, args.hf_home, args.repo)
    print(f"cached {args.repo} at {snapshot}\n"
          f"use it with: HF_HOME={args.hf_home.resolve()} HF_HUB_OFFLINE=1")


if __name__ == "__main__":
    main()
