"""scripts/darkest_frames.py: the darkest ground-truth frames, restored, in a sheet and a table."""

import numpy as np
from PIL import Image


def test_picks_the_darkest_frames_and_writes_their_sheet(tmp_path, tiny_checkpoint, load_script, capsys):
    night, gt = tmp_path / "night" / "0000", tmp_path / "gt" / "0000"
    night.mkdir(parents=True)
    gt.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, level in [("a", 200), ("b", 40), ("c", 120), ("d", 80)]:
        frame = np.clip(level + rng.normal(0, 20, (24, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(frame).save(gt / f"{name}.png")
        Image.fromarray((frame // 4).astype(np.uint8)).save(night / f"{name}.png")
    sheet = tmp_path / "darkest.png"

    script = load_script("darkest_frames")
    assert script.main(["--night", str(tmp_path / "night"), "--gt", str(tmp_path / "gt"),
                        "--weights", str(tiny_checkpoint), "-n", "2", "--sheet", str(sheet),
                        "--row-height", "48"]) == 0

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0000/")]
    assert [row.split("|")[1].strip() for row in rows] == ["0000/b.png", "0000/d.png"]  # darkest first
    gt_means = [float(row.split("|")[4]) for row in rows]
    assert abs(gt_means[0] - 40 / 255) < 0.02 and abs(gt_means[1] - 80 / 255) < 0.02
    height = Image.open(sheet).height
    assert 2 * 48 < height < 3 * 48 + 100  # two rows of night | restored | ground truth
