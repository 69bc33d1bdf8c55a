#!/usr/bin/env python3
"""Parses Prometheus text exposition on stdin with Prometheus' own Python parser
(prometheus_client.parser) and prints, as JSON, each family's type, help and samples.
Exits 1 with the parser's error on invalid input, and for a family without HELP or TYPE."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
out = {}
try:
    for family in text_string_to_metric_families(text):
        if family.type == "unknown" or not family.documentation:
            sys.exit(f"family {family.name}: no TYPE or no HELP")
        out[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [[s.name, s.labels, s.value] for s in family.samples],
        }
except ValueError as err:
    sys.exit(f"invalid exposition: {err}")
json.dump(out, sys.stdout)
