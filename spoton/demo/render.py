"""Look by eye: one frame of every demo camera with its ground truth drawn, as one PNG.

``python -m spoton.demo.render --frame 100`` -> ``build/demo/preview_0100.png``. Boxes are coloured by person id
(the same person has the same colour in every camera); the label is the id and the floor position in metres.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from spoton.demo.generate import DEFAULT_OUT
from spoton.videoset import load_video_set


def colour(ident: int) -> tuple[int, int, int]:
    hue = (ident * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def render(demo_dir: Path, frame: int) -> Path:
    vs = load_video_set(demo_dir / "demo.yaml")
    tiles = []
    for cam in vs.cameras:
        cap = cv2.VideoCapture(vs.source_uri(cam))
        cap.set(cv2.CAP_PROP_POS_FRAMES, frame - 1)
        ok, image = cap.read()
        cap.release()
        if not ok:
            raise ValueError(f"{cam.id} has no frame {frame}")
        gt_file = demo_dir / "gt" / f"{cam.id}.txt"
        if gt_file.exists():
            rows = np.loadtxt(gt_file, delimiter=",", ndmin=2)
            for r in rows[rows[:, 0] == frame]:
                x, y, w, h = (round(v) for v in r[2:6])
                c = colour(int(r[1]))
                cv2.rectangle(image, (x, y), (x + w, y + h), c, 2)
                cv2.putText(
                    image,
                    f"{int(r[1])} ({r[7]:.1f},{r[8]:.1f})",
                    (x, max(12, y - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4,
                    c,
                    1,
                    cv2.LINE_AA,
                )
        cv2.putText(image, cam.id, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(cv2.resize(image, (512, int(512 * image.shape[0] / image.shape[1]))))
    height = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in tiles]
    rows = [
        np.hstack(tiles[i : i + 2]) if i + 1 < len(tiles) else np.hstack([tiles[i], np.zeros_like(tiles[i])])
        for i in range(0, len(tiles), 2)
    ]
    out = demo_dir / f"preview_{frame:04d}.png"
    cv2.imwrite(str(out), np.vstack(rows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--frame", type=int, default=100)
    print(render(**{"demo_dir": (a := parser.parse_args()).dir, "frame": a.frame}))


if __name__ == "__main__":
    main()
