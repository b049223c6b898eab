#!/usr/bin/env python3
"""Write scikit-learn's bundled `load_digits` dataset (1797 8x8 grey images of the digits
0-9, shipped inside the scikit-learn package: nothing is downloaded) as PNG files plus a
COCO detection JSON: one image per digit, one annotation per image whose box is the
bounding box of the digit's ink and whose category is the digit.

usage: make_digits.py OUT_DIR      (writes OUT_DIR/images/*.png and OUT_DIR/annotations.json)
"""
import json
import os
import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main(out):
    digits = load_digits()
    img_dir = os.path.join(out, "images")
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        name = f"digit_{i:04d}.png"
        # 0..16 grey levels scaled to 0..255, upscaled 4x so the files look like images
        arr = (pixels * 255.0 / 16.0).round().astype(np.uint8)
        img = Image.fromarray(arr, mode="L").resize((32, 32), Image.NEAREST)
        path = os.path.join(img_dir, name)
        if not os.path.exists(path):
            img.save(path, optimize=False)
        images.append({"id": i + 1, "file_name": name, "width": 32, "height": 32})
        ys, xs = np.nonzero(arr)
        x0, y0 = int(xs.min()) * 4, int(ys.min()) * 4
        w, h = (int(xs.max()) + 1) * 4 - x0, (int(ys.max()) + 1) * 4 - y0
        annotations.append({
            "id": i + 1,
            "image_id": i + 1,
            "category_id": int(target) + 1,
            "bbox": [float(x0), float(y0), float(w), float(h)],
            "area": float(w * h),
            "iscrowd": 0,
        })
    categories = [{"id": d + 1, "name": str(d), "supercategory": "digit"} for d in range(10)]
    doc = {
        "info": {"description": "scikit-learn load_digits (UCI optical recognition of handwritten digits)"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    with open(os.path.join(out, "annotations.json"), "w") as f:
        json.dump(doc, f)
    print(f"make_digits: {len(images)} images, {len(annotations)} annotations in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "digits")
