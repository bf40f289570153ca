#!/bin/sh
# The map step of wordcount, one mtask task: text on stdin, one "word<TAB>count" line per distinct
# word on stdout. A word is a maximal run of ASCII letters A-Z a-z, lower-cased ("GPL-3" is "gpl").
export LC_ALL=C
# shellcheck disable=SC2018,SC2019 # ASCII letters only, on purpose
tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | sort | uniq -c | awk 'NF == 2 { print $2 "\t" $1 }'
