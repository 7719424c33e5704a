#!/bin/sh
# Runs an MPI job in which one rank fails on purpose and checks that the job ends: a
# non-zero exit status, output matching the expected message, rank 0 never finishing,
# and all of it within a few seconds.
#   run_fault.sh <seconds allowed> <expected regex> <command...>
# With EXPECT_STATUS set, the job's exit status must be that number.
limit=$1
expect=$2
shift 2
start=$(date +%s.%N)
out=$("$@" 2>&1)
rc=$?
end=$(date +%s.%N)
secs=$(echo "$start $end" | awk '{ printf "%.2f", $2 - $1 }')
echo "$out"
echo "run_fault: exit status $rc after $secs s"
fail=0
if [ "$rc" -eq 0 ]; then echo "run_fault: expected a non-zero exit status"; fail=1; fi
if [ -n "${EXPECT_STATUS:-}" ] && [ "$rc" -ne "$EXPECT_STATUS" ]; then
  echo "run_fault: expected exit status $EXPECT_STATUS"; fail=1
fi
if ! echo "$out" | grep -Eq "$expect"; then echo "run_fault: no line matches: $expect"; fail=1; fi
if echo "$out" | grep -q "rank 0: finished training"; then echo "run_fault: rank 0 finished training"; fail=1; fi
if ! awk -v s="$secs" -v l="$limit" 'BEGIN { exit !(s < l) }'; then echo "run_fault: took longer than $limit s"; fail=1; fi
exit $fail
