#!/bin/sh
# Checks a built one-folder app (`make package`): the command line, the bundled files, a WordPiece
# tokenizer (tensorflow-text), a short XLA training run, generation, and the window (a screenshot).
#
#     sh packaging/smoke_test.sh [APP_FOLDER] [SCREENSHOT]
#
# APP_FOLDER defaults to dist/desktop_llm, SCREENSHOT to out/package/window.png. Run it from the
# repository (it trains on resources/corpora/tinyshakespeare.txt). Everything it writes goes to a
# temporary workspace (DESKTOP_LLM_HOME), removed at the end. The window runs under a virtual X
# server if `xvfb-run` exists (Debian/Ubuntu: the xvfb package), else on Qt's offscreen platform.
set -eu

APP_DIR=${1:-dist/desktop_llm}
SHOT=${2:-out/package/window.png}
EXE="$APP_DIR/desktop_llm"
[ -x "$EXE" ] || EXE="$APP_DIR/desktop_llm.exe"
[ -x "$EXE" ] || { echo "smoke_test: no app in $APP_DIR (run make package first)" >&2; exit 1; }
CORPUS=resources/corpora/tinyshakespeare.txt

WORK=$(mktemp -d "${TMPDIR:-/tmp}/desktop_llm-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DESKTOP_LLM_HOME="$WORK/home"
export DESKTOP_LLM_HOME
unset PYTHONPATH PYTHONHOME

step() { printf '\n== %s\n' "$*"; }
fail() { echo "smoke_test: FAILED: $*" >&2; exit 1; }
now() { date +%s; }

step "version"
"$EXE" --version
# What the window runs as its children (the trainer, the device probe): `<exe> -m desktop_llm ...`
"$EXE" -m desktop_llm --version >/dev/null || fail "'-m desktop_llm' is not accepted"

step "doctor: versions and the bundled files"
"$EXE" doctor --no-devices --json > "$WORK/doctor.json" || fail "doctor"
grep -q '"found": true' "$WORK/doctor.json" || fail "the bundled corpora are not found: $(cat "$WORK/doctor.json")"
APP_ABS=$(cd "$APP_DIR" && pwd -P)
grep -q "\"resources\": {\"path\": \"$APP_ABS/" "$WORK/doctor.json" \
    || fail "the bundled files are not read from the app: $(cat "$WORK/doctor.json")"
if grep -q '"tensorflow-text", "for": "[^"]*", "version": null' "$WORK/doctor.json"; then
    echo "tensorflow-text is not in this build: no WordPiece check"
    WORDPIECE=no
else
    WORDPIECE=yes
fi
"$EXE" doctor --no-devices | sed -n '3,20p'

if [ "$WORDPIECE" = yes ]; then
    step "tokenizer train --kind wordpiece (tensorflow-text)"
    "$EXE" tokenizer train "$CORPUS" --kind wordpiece --vocab-size 400 --out "$WORK/wordpiece" \
        || fail "WordPiece training"
    "$EXE" tokenizer encode "ROMEO: wherefore art thou" --tokenizer "$WORK/wordpiece" || fail "WordPiece encode"
fi

step "train --preset tiny --steps 20"
t0=$(now)
"$EXE" train "$CORPUS" --preset tiny --steps 20 --eval-interval 20 --json > "$WORK/train.jsonl" \
    || { tail -5 "$WORK/train.jsonl"; fail "training"; }
t1=$(now)
grep -q '"type": "completed"' "$WORK/train.jsonl" || { tail -5 "$WORK/train.jsonl"; fail "no completed event"; }
grep '"type": "completed"' "$WORK/train.jsonl"
echo "trained in $((t1 - t0)) s"

step "generate --prompt ROMEO: --max-tokens 20"
t0=$(now)
"$EXE" generate --prompt "ROMEO:" --max-tokens 20 > "$WORK/generate.txt" || fail "generation"
t1=$(now)
cat "$WORK/generate.txt"
[ "$(wc -c < "$WORK/generate.txt")" -gt 8 ] || fail "no text generated"
echo "generated in $((t1 - t0)) s"

step "the window: a screenshot to $SHOT"
mkdir -p "$(dirname "$SHOT")"
rm -f "$SHOT"
# 12 s: time for the window's device probe (a child process importing TensorFlow) to report.
if command -v xvfb-run >/dev/null 2>&1; then
    echo "(under xvfb-run: the real X11 platform plugin)"
    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1280x800x24" \
        "$EXE" gui --corpus "$CORPUS" --screenshot "$SHOT" --screenshot-delay 12 || fail "the window (xvfb)"
else
    echo "(no xvfb-run: Qt's offscreen platform)"
    QT_QPA_PLATFORM=offscreen \
        "$EXE" gui --corpus "$CORPUS" --screenshot "$SHOT" --screenshot-delay 12 || fail "the window (offscreen)"
fi
[ -s "$SHOT" ] || fail "no screenshot"
ls -l "$SHOT"

step "size"
du -sh "$APP_DIR"
echo
echo "smoke_test: all passed"
