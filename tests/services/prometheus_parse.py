"""Parses a metrics scrape with the Prometheus project's own Python client, as a Prometheus server would
read it: the reference the metrics test holds the gateway's exposition to.

  prometheus_parse.py text|openmetrics < scrape

Prints the samples as a JSON list of {"name", "labels", "value"}, after the metric families' types
(`{"family", "type"}`); a scrape the parser refuses fails with its error.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as text_families

parse = {"text": text_families, "openmetrics": openmetrics_families}[sys.argv[1]]
out = []
for family in parse(sys.stdin.read()):
    out.append({"family": family.name, "type": family.type})
    out.extend({"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples)
json.dump(out, sys.stdout)
