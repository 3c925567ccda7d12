#!/usr/bin/env bash
# Build the site into docs/_build/html/{en,zh}/ from the committed, executed notebooks (nothing is re-run).
# Needs the docs extra: pip install -c constraints.txt -e ".[docs]"
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
python make_pages.py _build/src
build() {  # language
    FNNET_DOCS_LANG=$1 python -m sphinx -q -W --keep-going -b html -c . "_build/src/$1" "_build/html/$1"
}
build en &
en=$!
build zh
wait "$en"
cp redirect.html _build/html/index.html
echo "site built in docs/_build/html (en/, zh/) in $(( $(date +%s) - start )) s"
