"""Build the student repository: `build/student/` and `build/sds-assignment-student.zip`.

    python scripts/make_student.py            # what `make student` runs (after `make release`)
    python scripts/make_student.py --out DIR  # elsewhere (the tests use this)

The bundle holds exactly what a student needs and nothing they must not see: the release
notebooks, the student package `sdskit/`, the tiny model, the visible reference tensors,
`requirements-colab.txt`, and a short README with Open-in-Colab links to
`COURSE.student_repo_url`. It is a git repository with one commit, ready to push to that
(public) repository; the zip holds the same files for course sites that hand out zips.

Before anything is written, the folder is searched for answers, hidden tests and hidden data
(autograder/leaks.py); a bundle with any finding is refused.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit, when run as a script

from autograder import leaks, written  # noqa: E402
from sdskit.config import COURSE  # noqa: E402
from sdskit.i18n import tr_in  # noqa: E402
from sdskit.paths import NOTEBOOKS, REFERENCES, ROOT, TINY_SD  # noqa: E402

BUILD = ROOT / "build"
PLACEHOLDER = "YOUR-ORG"
ZIP_NAME = "sds-assignment-student.zip"
ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed, so the same files give the same zip
GITIGNORE = "__pycache__/\n*.pyc\n.ipynb_checkpoints/\ntext_to_3d_out/\n"

README = """\
# Score Distillation Sampling: the assignment

You write the heart of DreamFusion's text-to-3D: Score Distillation Sampling (SDS), in seven
blanks of a Stable Diffusion guidance class. The last cell turns your code into a 3D object made
from a sentence.

| Notebook | Open |
|---|---|
{rows}

## How to work
1. Open the notebook with its Colab link above, then *Runtime > Change runtime type > T4 GPU*.
2. Run the first cell. It fetches this repository's files and installs the packages the
   assignment needs (about a minute).
3. Read each part, write your code where it says `# YOUR CODE HERE` (delete the
   `raise NotImplementedError()` line), run the cell, then run the test cell below it. A failing
   test says what it expected, what it got, and gives a hint.
4. Each blank has a visible test (1 point), which you can run now, and a hidden test (1 point)
   with more cases, which runs when your work is graded. A blank is graded on its own.
5. Without a GPU everything works the same on a tiny offline model, except the pictures and the
   3D result (its pictures are noise).
{written_en}
## Before you hand in
*Runtime > Restart session and run all*, then run the last cell, "check my work": it prints a
table of every blank's visible test. Then *File > Download > Download .ipynb*, keep the file
name (`Copy of ...` is fine too), and upload that one file where your course's assignment page
says.

Working on your own computer instead: `git clone {repo}`, `pip install torch` and
`pip install -r requirements-colab.txt`, then open the notebook in `notebooks/` with Jupyter.

---

# 스코어 증류 샘플링(SDS) 과제

DreamFusion의 텍스트-3D 생성의 핵심인 스코어 증류 샘플링(Score Distillation Sampling, SDS)을
Stable Diffusion 가이던스 클래스의 빈칸 7개를 채우며 직접 구현합니다. 마지막 셀은 여러분의 코드로
문장 하나에서 3D 물체를 만듭니다.

## 진행 방법
1. 위 표의 Colab 링크로 노트북을 열고 *런타임 > 런타임 유형 변경 > T4 GPU*를 선택합니다.
2. 첫 번째 셀을 실행하면 이 저장소의 파일을 가져오고 필요한 패키지를 설치합니다(약 1분).
3. 각 파트를 읽고 `# YOUR CODE HERE` 자리에 코드를 작성한 뒤(`raise NotImplementedError()` 줄은
   지웁니다) 셀을 실행하고, 바로 아래 테스트 셀을 실행합니다. 테스트가 실패하면 기대한 값, 실제 값,
   힌트를 알려 줍니다.
4. 빈칸마다 지금 실행해 볼 수 있는 공개 테스트(1점)와, 채점할 때 더 많은 경우를 확인하는 숨은
   테스트(1점)가 있습니다. 빈칸은 각각 따로 채점됩니다.
5. GPU가 없어도 작은 오프라인 모델로 모든 것이 똑같이 동작합니다. 다만 그림과 3D 결과는 노이즈입니다.
{written_ko}
## 제출 전에
*런타임 > 세션 다시 시작 및 모두 실행*을 한 뒤, 마지막 셀("check my work")을 실행하면 모든 빈칸의
공개 테스트 결과가 표로 나옵니다. 그다음 *파일 > 다운로드 > .ipynb 다운로드*로 저장하고, 파일 이름은
그대로 두어('...의 사본'이나 `Copy of ...`도 괜찮습니다) 과제 페이지가 안내하는 곳에 그 파일 하나를
올립니다. 한국어판 노트북(sds_assignment_ko.ipynb)에서는 테스트 메시지와 채점 후 받는 피드백도
한국어로 나옵니다.
"""


def colab_url(notebook: str) -> str:
    """The Open-in-Colab address of notebooks/<notebook> in the student repository."""
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", COURSE.student_repo_url)
    if match is None:
        raise SystemExit(f"error: student_repo_url in sdskit/config.py is {COURSE.student_repo_url!r}; "
                         "Colab opens notebooks from GitHub, so it must look like "
                         "https://github.com/ORG/REPO.")
    owner, repo = match.groups()
    return (f"https://colab.research.google.com/github/{owner}/{repo}/blob/"
            f"{COURSE.student_repo_branch}/notebooks/{notebook}")


def student_files() -> dict[str, Path]:
    """{path in the bundle: source file} for everything a student gets."""
    files = {f"notebooks/{p.name}": p for p in sorted(NOTEBOOKS.glob("*.ipynb"))}
    files.update({f"sdskit/{p.name}": p for p in sorted((ROOT / "sdskit").glob("*.py"))})
    # The message catalogues (sdskit/i18n.py): the compiled .mo files gettext reads, and the
    # .po sources beside them.
    files.update({str(p.relative_to(ROOT)): p for p in sorted((ROOT / "sdskit" / "locale").rglob("*"))
                  if p.is_file() and p.suffix in (".po", ".mo")})
    files.update({str(p.relative_to(ROOT)): p for p in sorted(TINY_SD.rglob("*")) if p.is_file()})
    files[str(REFERENCES.relative_to(ROOT))] = REFERENCES
    files["requirements-colab.txt"] = ROOT / "requirements-colab.txt"
    return files


def written_item(language: str) -> str:
    """The README's line on the written questions (none if no question is graded)."""
    asked = written.questions()
    if not asked:
        return ""
    return tr_in(language, written.README_ITEM, titles=", ".join(q.title(language) for q in asked),
                 points=written.points_text(sum(q.points for q in asked))) + "\n"


def readme() -> str:
    rows = "\n".join(f"| `{name}` | [Open in Colab]({colab_url(name)}) |"
                     for name in sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
    return README.format(rows=rows, repo=COURSE.student_repo_url, written_en=written_item("en"),
                         written_ko=written_item("ko"))


def write_bundle(out: Path) -> Path:
    """Write the student folder at `out` (replaced if present); return it."""
    if out.exists():
        shutil.rmtree(out)
    for target, source in student_files().items():
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / target)
    (out / "README.md").write_text(readme())
    (out / ".gitignore").write_text(GITIGNORE)
    return out


def commit(out: Path) -> None:
    """Make `out` a git repository with one commit on the configured branch."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Course staff", "GIT_AUTHOR_EMAIL": "staff@course.invalid",
           "GIT_COMMITTER_NAME": "Course staff", "GIT_COMMITTER_EMAIL": "staff@course.invalid",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}
    for args in (["init", "--quiet", "--initial-branch", COURSE.student_repo_branch],
                 ["add", "--all"], ["commit", "--quiet", "-m", "The SDS assignment"]):
        subprocess.run(["git", *args], cwd=out, env=env, check=True, capture_output=True)


def write_zip(folder: Path, path: Path) -> Path:
    """The same files as `folder` (without .git), with fixed timestamps, under one top folder."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in
                           p.relative_to(folder).parts):
            info = zipfile.ZipInfo(f"sds-assignment/{file.relative_to(folder).as_posix()}", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes())
    return path


def build(out: Path = BUILD / "student", zip_path: Path | None = BUILD / ZIP_NAME) -> Path:
    """Check, then write the bundle, its git commit and its zip. Raises SystemExit on a leak."""
    with tempfile.TemporaryDirectory() as tmp:
        found = leaks.find_leaks(write_bundle(Path(tmp) / "student"))
    if found:
        raise SystemExit("error: the student bundle would leak, so nothing was written:\n  "
                         + "\n  ".join(found))
    write_bundle(out)
    commit(out)
    if zip_path is not None:
        write_zip(out, zip_path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILD / "student")
    parser.add_argument("--zip", type=Path, default=BUILD / ZIP_NAME)
    args = parser.parse_args()
    out = build(args.out, args.zip)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and ".git" not in p.parts)
    print(f"wrote {out}/ ({size / 1e6:.1f} MB) and {args.zip} ({args.zip.stat().st_size / 1e6:.1f} MB); "
          "no answers, hidden tests or hidden data found in it")
    for name in sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")):
        print(f"Colab link for {name}: {colab_url(name)}")
    if PLACEHOLDER in COURSE.student_repo_url:
        print(f"note: student_repo_url in sdskit/config.py is still the placeholder "
              f"{COURSE.student_repo_url}; set it to your public repository, then run "
              "`make student` again (docs/publishing.md).")
    print(f"to publish: cd {out} && git remote add origin {COURSE.student_repo_url}.git "
          f"&& git push -u origin {COURSE.student_repo_branch}")


if __name__ == "__main__":
    main()
