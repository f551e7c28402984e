"""After the learning-rate sweep: the best rate of each architecture (lowest final validation loss) and the step count
the main runs can all reach in the time left (one run per GPU: the sweep's measured speed, shared by `per_gpu` runs,
scaled to a GPU of its own, with a margin). usage: python3 sweep_pick.py SWEEP_DIR SECONDS PER_GPU > plan.json"""
import glob
import json
import os
import sys


def main():
    root, seconds, per_gpu = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    runs = {}
    for path in glob.glob(os.path.join(root, "*", "train_log.json")):
        log = json.load(open(path))
        last = [e for e in log["curve"] if "valid_loss" in e][-1]
        speed = log["curve"][-1]["step"] / max(log["train_seconds"], 1e-6)
        arch = log["arch"] + ("+dt" if log.get("dt_values") else "")
        runs.setdefault(arch, []).append({"lr": log["lr"], "valid_loss": last["valid_loss"], "steps_per_s": speed})
    best = {arch: min(rs, key=lambda r: r["valid_loss"]) for arch, rs in runs.items()}
    alone = min(r["steps_per_s"] for rs in runs.values() for r in rs) * per_gpu * 0.8
    plan = {"sweep": runs, "lr": {a: b["lr"] for a, b in best.items()}, "steps": int(alone * seconds) // 50 * 50,
            "steps_per_s_alone_estimate": alone}
    print(json.dumps(plan, indent=1))


if __name__ == "__main__":
    main()
