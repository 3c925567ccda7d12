#!/usr/bin/env bash
# Build the site into docs/_build/html/{en,zh}/: the lessons from the committed, executed notebooks (nothing is
# re-run), the guide (docs/guide) and the API reference (from the docstrings), with -W: a warning fails the build.
# Needs the docs extra: pip install -c constraints.txt -e ".[docs]" (and torch, for the API of fnnet.parity).
# Runs $PYTHON if set (the tests set it to the interpreter running them), else the first python on PATH.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
start=$(date +%s)
"$PYTHON" make_pages.py _build/src
build() {  # language; a warning names the file to edit (notebooks/NN_name.md ...), not its copy under _build
    FNNET_DOCS_LANG=$1 "$PYTHON" -m sphinx -q -W --keep-going -b html -c . "_build/src/$1" "_build/html/$1" 2>&1 \
        | "$PYTHON" warning_sources.py
}
build en &
en=$!
zh_status=0; build zh || zh_status=$?
en_status=0; wait "$en" || en_status=$?
if [ "$en_status" != 0 ] || [ "$zh_status" != 0 ]; then
    echo "site build failed (en: exit $en_status, zh: exit $zh_status)" >&2
    exit 1
fi
cp redirect.html _build/html/index.html
echo "site built in docs/_build/html (en/, zh/) in $(( $(date +%s) - start )) s"
