#!/bin/sh
# char_lm stopped after epoch 1 and resumed from its checkpoint must end exactly where an
# uninterrupted run of the same recipe ends: the same final validation loss and the same
# generated sample, which depends on every weight.
#   char_lm_resume.sh CHAR_LM CHECKPOINT RECIPE...
set -e
program=$1
checkpoint=$2
shift 2
rm -f "$checkpoint"
"$program" "$@" --stop-after 1 --checkpoint "$checkpoint" >/dev/null
# Everything from the final validation on, without the minutes of training.
ending() { sed -n '/^final validation/,$p' | sed 's/ after [0-9.]* minutes of training//'; }
resumed=$("$program" "$@" --resume "$checkpoint" | ending)
straight=$("$program" "$@" | ending)
printf 'resumed:\n%s\nuninterrupted:\n%s\n' "$resumed" "$straight"
[ -n "$resumed" ] && [ "$resumed" = "$straight" ] && echo "$resumed" | grep -q '^sample'
