#!/usr/bin/env python3
"""Give upper-case-only labels back their case, read off the crops by a teacher recognizer.

SROIE and SVT label every crop in capitals ("RECEIPT NO.:003-1220815" under a crop that reads
"Receipt No.:003-1220815"). A case-sensitive model trained on them learns that "Receipt" is spelt
"RECEIPT". The teacher (PP-OCRv4 rec, converted with `crnn convert`) reads each crop; wherever its
text agrees with the label word for word, ignoring case, the word takes the teacher's case. A word
the teacher read otherwise keeps the label's capitals. Only the case of letters ever
changes, never a letter, a digit or a symbol, so the labels stay the official ground truth.

    python scripts/default_model/restore_case.py --teacher runs/teacher/ppocrv4_rec.xml \\
        --data-dir ../shared/data/real runs/default/split/train_sroie_lines_train.tsv \\
        --out runs/default/split/train_sroie_lines_train.cased.tsv

Prints how many labels changed and how many the teacher could not confirm.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path


def transfer_case(label: str, read: str) -> str:
    """``label`` with the case of ``read`` in every word the two share ignoring case.

    Words are aligned with difflib; a word the teacher read otherwise keeps the label's capitals (a
    letter-level transfer would turn a half-misread "LULA" into "LULa").
    """
    words, seen = label.split(" "), read.split()
    folded = [w.casefold() for w in seen]
    matcher = difflib.SequenceMatcher(None, [w.casefold() for w in words], folded, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            if len(seen[block.b + k]) == len(words[block.a + k]):
                words[block.a + k] = seen[block.b + k]
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labels", type=Path, help="label file (path<TAB>label), paths relative to --data-dir")
    ap.add_argument("--out", type=Path, required=True, help="where to write the cased label file")
    ap.add_argument("--teacher", type=Path, required=True, help="a crnn-readable model (.xml or .onnx)")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)

    from crnn_cli.core.recognizer import Recognizer

    rows = [line.split("\t", 1) for line in args.labels.read_text("utf-8").splitlines() if "\t" in line]
    changed = unconfirmed = 0
    out_lines = []
    with Recognizer(args.teacher, batch_size=args.batch_size) as teacher:
        results = teacher.recognize([str(args.data_dir / rel) for rel, _ in rows])
        for (rel, label), result in zip(rows, results):
            if result.error is not None:
                print(f"{rel}: {result.error}", file=sys.stderr)
                out_lines.append(f"{rel}\t{label}")
                continue
            read = result.text.strip()
            if read.casefold().replace(" ", "") != label.casefold().replace(" ", ""):
                unconfirmed += 1
            cased = transfer_case(label, read)
            changed += cased != label
            out_lines.append(f"{rel}\t{cased}")
    args.out.write_text("\n".join(out_lines) + "\n", "utf-8")
    print(
        f"{args.labels.name}: {len(rows)} labels, {changed} given their case back, "
        f"{unconfirmed} read otherwise by the teacher (only the words it read alike changed) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
