"""How faithfully the multilingual reader's int8 file answers as its float32 file does, with and
without its feed-forward layers kept in float32, on inputs that are not XQuAD: 800 Russian
(question, passage) pairs cut from Debian's manpages-ru, and 800 English SQuAD dev questions whose
paragraphs XQuAD did not take. No answer key is read: an int8 file is scored by how often its best
span is float32's (and by token F1 to it), on all pairs and on those float32 answers confidently.

    apt-get download manpages-ru && dpkg-deb -x manpages-ru_*.deb /tmp/manpages-ru
    python evals/russian-int8/agree.py /tmp/manpages-ru ../shared /tmp/russian-int8
"""

import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from search.exported import Session, quantize
from search.metrics import answer_f1
from search.reader import Reader

GENERIC = ["Что делает эта команда?", "Какой файл используется по умолчанию?", "Что происходит при ошибке?",
           "Какое значение возвращается в случае успеха?", "Кто написал эту программу?",
           "Какая переменная окружения используется?", "В каком каталоге хранятся файлы?",
           "Зачем нужен этот параметр?", "Когда появилась эта функция?", "Как изменить формат вывода?"]
OPTION = re.compile(r"^\s{5,8}(-{1,2}[A-Za-z][\w-]*)(?:[ ,=\[\t]|$)")
FUNCTION = re.compile(r"\b([a-z_][a-z0-9_]{2,})\(\d\)")
CONSTANT = re.compile(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]{2,})\b")
ENVIRONMENT = {"MANWIDTH": "2000", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def rendered(page: Path) -> str:
    """The man page as plain text, without its header and footer lines."""
    roff = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, env=ENVIRONMENT).stdout
    text = subprocess.run(["col", "-b"], input=roff, capture_output=True, text=True).stdout
    return "\n".join(text.splitlines()[1:-1])


def passages(text: str, size: int = 900) -> list[str]:
    """Runs of the page's Russian paragraphs of about ``size`` characters."""
    blocks, current = [], ""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = "\n".join(line.rstrip() for line in paragraph.splitlines() if line.strip())
        if not re.search("[а-яА-Я]", paragraph):
            continue
        if current and len(current) + len(paragraph) > size:
            blocks.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    return [b for b in blocks + [current] if 200 <= len(b) <= 1500]


def russian_pairs(manpages: Path, count: int = 800) -> list[tuple[str, str]]:
    """A question about an option, a function or a constant the passage names, else a generic one."""
    rng, pairs = random.Random(0), []
    for page in sorted(manpages.rglob("usr/share/man/ru/**/*.gz")):
        for passage in passages(rendered(page)):
            terms = [f"Что делает параметр {t}?" for t in sorted({m[1] for m in map(OPTION.match, passage.splitlines()) if m})]
            terms += [f"Что делает {t}?" for t in sorted(set(FUNCTION.findall(passage)))]
            terms += [f"Что означает {t}?" for t in sorted(set(CONSTANT.findall(passage)))]
            pairs.append((rng.choice(terms or GENERIC), passage))
    rng.shuffle(pairs)
    return pairs[:count]


def english_pairs(shared: Path, count: int = 800) -> list[tuple[str, str]]:
    xquad = {p["context"] for a in json.loads((shared / "data/xquad/xquad.en.json").read_text())["data"] for p in a["paragraphs"]}
    dev = json.loads((shared / "data/squad/dev-v1.1.json").read_text())["data"]
    pairs = [(q["question"], p["context"]) for a in dev for p in a["paragraphs"] if p["context"] not in xquad for q in p["qas"]]
    random.Random(0).shuffle(pairs)
    return pairs[:count]


def best_answers(reader: Reader, pairs) -> list[tuple[str, float]]:
    answers = [reader.read(question, [passage], top_k=1, threshold=None) for question, passage in pairs]
    return [(a[0].text, a[0].score) if a else ("", 0.0) for a in answers]


def main(manpages: Path, shared: Path, work: Path) -> None:
    exact = Reader("multilingual", precision="float32", backend="onnx")
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, feed_forward in (("int8", False), ("int8, feed-forward in float32", True)):
        link = work / f"{'feed-forward' if feed_forward else 'plain'}.onnx"
        link.unlink(missing_ok=True)
        link.with_name(f"{link.stem}-int8.onnx").unlink(missing_ok=True)  # made anew: the model may have changed
        link.symlink_to(exact.session.path)
        files[name] = quantize(link, feed_forward)
    print("pairs    file                            same span  F1 to float32  same (confident)  ms a pair")
    for language, pairs in (("Russian", russian_pairs(manpages)), ("English", english_pairs(shared))):
        want = best_answers(exact, pairs)
        confident = [i for i, (_, score) in enumerate(want) if score >= exact.calibration.threshold]
        for name, path in files.items():
            reader = Reader("multilingual", precision="int8", backend="onnx")
            reader.__dict__["session"] = Session(path)
            start = time.perf_counter()
            got = best_answers(reader, pairs)
            seconds = time.perf_counter() - start
            same = [g[0] == w[0] for g, w in zip(got, want)]
            f1 = np.mean([answer_f1(g[0], [w[0]]) for g, w in zip(got, want)])
            print(f"{language}  {name:30s} {np.mean(same):9.3f} {f1:14.3f} {np.mean([same[i] for i in confident]):17.3f}"
                  f" {1000 * seconds / len(pairs):10.1f}   ({len(pairs)} pairs, {len(confident)} confident)")


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:4]))
