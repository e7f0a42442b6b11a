#!/usr/bin/env python3
"""Writes a wrk Lua script that posts N distinct, correctly signed WhatsApp
webhooks (each a new message, so every request exercises the full ingest path:
signature check, parse, one SQL transaction, 200).

usage: make_ingest_script.py COUNT APP_SECRET > ingest.lua
       wrk -t2 -c32 -d10s --latency -s ingest.lua http://127.0.0.1:8080/webhooks/whatsapp
"""
import hashlib
import hmac
import json
import sys

count = int(sys.argv[1])
secret = sys.argv[2].encode()
print("local bodies = {}")
print("local signatures = {}")
# Lua allows 65,536 constants per function: fill the tables in chunks.
CHUNK = 10000
for n in range(count):
    if n % CHUNK == 0:
        if n:
            print(f"end fill_{n // CHUNK - 1}()")
        print(f"local function fill_{n // CHUNK}()")
    body = json.dumps({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Load"}, "wa_id": f"1777{n:07d}"}],
            "messages": [{"from": f"1777{n:07d}", "id": f"wamid.load.{n}", "timestamp": "1764390000",
                          "type": "text", "text": {"body": "are you open on sunday?"}}]}}]}]},
        separators=(",", ":"))
    signature = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    print(f"bodies[{n + 1}] = {json.dumps(body)}")
    print(f'signatures[{n + 1}] = "{signature}"')
print(f"end fill_{(count - 1) // CHUNK}()")
print(f"""
-- Each wrk thread walks its own stride of the list, so no two requests repeat
-- a message id until the list is exhausted (then they are deduplicated).
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
local counter = 0
local stride = 1
function init(args)
  stride = tonumber(args[1]) or 1  -- pass the thread count after "--"
end
request = function()
  local i = ((counter * stride + id) % {count}) + 1
  counter = counter + 1
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = signatures[i]}}, bodies[i])
end
-- One machine-readable line for bench/ingest.sh: acknowledged (2xx) answers
-- per second and their latency percentiles.
done = function(summary, latency, requests)
  local refused = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  local acked = summary.requests - summary.errors.status
  io.write(string.format("RESULT acked=%d refused=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\\n",
    acked, refused, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
""")
