#!/usr/bin/env python3
"""A training job whose objective is a known function of its hyperparameters (all strings, as SageMaker passes).

    score = 1 - (x - 0.3)**2 - 0.01 * (depth - 4)**2 + BONUS[kind]      (x: float, depth: int, kind: a|b|c)

best at x=0.3, depth=4, kind=b (score 1.1). Prints three epochs ``epoch=<i> score=<value>;`` (the last one is
the final score; earlier epochs trail it by 0.1 a step) and writes /opt/ml/model/surface.json.
"""

import json
import os

BONUS = {"a": 0.0, "b": 0.1, "c": 0.05}


def main():
    with open("/opt/ml/input/config/hyperparameters.json") as f:
        hp = json.load(f)
    x = float(hp.get("x", "0"))
    depth = int(hp.get("depth", "4"))
    kind = hp.get("kind", "a")
    score = 1 - (x - 0.3) ** 2 - 0.01 * (depth - 4) ** 2 + BONUS[kind]
    for epoch in (1, 2, 3):
        print(f"epoch={epoch} score={score - 0.1 * (3 - epoch):.6f};", flush=True)
    os.makedirs("/opt/ml/model", exist_ok=True)
    with open("/opt/ml/model/surface.json", "w") as f:
        json.dump({"hyperparameters": hp, "score": score}, f)


if __name__ == "__main__":
    main()
