"""Validates every KrakenD config example of the repository against KrakenD's published v2.13 schema.

    python validate.py SCHEMA CONFIG...

Draft 2019-09, as the schema declares: the schema itself is checked against that draft's meta-schema, and
an invalid config (the canary) must be refused, so a validator that accepts everything cannot pass.
"""
import json
import sys

import jsonschema

schema_path, configs = sys.argv[1], sys.argv[2:]
with open(schema_path) as f:
    schema = json.load(f)
validator_class = jsonschema.validators.validator_for(schema, default=None)
if validator_class is not jsonschema.Draft201909Validator:
    sys.exit(f"{schema_path}: expected a draft 2019-09 schema, the validator picked is {validator_class}")
validator_class.check_schema(schema)
validator = validator_class(schema)

# The canary: a minimal valid config made invalid in three ways the schema forbids.
canary = {"version": 3, "port": "eighty", "endpoints": [{"endpoint": "/x", "backend": [{"url_pattern": 1}]}],
          "no_such_setting": True}
if not validator.is_valid({"version": 3, "port": 8080}) or validator.is_valid(canary):
    sys.exit("the validator does not tell a valid config from an invalid one")
print(f"canary: an invalid config is refused ({len(list(validator.iter_errors(canary)))} errors)")

passed = failed = 0
for path in configs:
    with open(path) as f:
        config = json.load(f)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        failed += 1
        print(f"FAILED {path}")
        for e in errors:
            print(f"    at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}")
    else:
        passed += 1
        print(f"ok     {path}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not configs else 0)
