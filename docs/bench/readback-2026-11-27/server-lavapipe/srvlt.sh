# $1: FURY_READBACK_CHUNK_BYTES, $2: out dir
FURY_READBACK_CHUNK_BYTES=$1 node dist/cli/fury.js serve --model /tmp/small2m --backend webgpu --max-batch 4 --state-cache-min-tokens 0 --port 18790 > /tmp/srv-$1.log 2>&1 &
SP=$!
for i in $(seq 1 120); do curl -sf http://127.0.0.1:18790/health > /dev/null && break; sleep 1; done
timeout 900 node dist/cli/fury.js loadtest --url http://127.0.0.1:18790 --model small2m --contexts 64 --concurrency 4 --requests 8 --max-tokens 16 --out $2 2>&1 | tr '\r' '\n' | grep -v "^Warning" | tail -2
kill $SP; wait $SP 2>/dev/null
