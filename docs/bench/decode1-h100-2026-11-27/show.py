# Summarises a run's bench.txt: each labelled fury bench JSON's decode ms/step, p90, host encode, and with --profile
# the GPU ms of a step in one pass and its kernels (ms per step, per-kernel passes).
import json, sys
name = None
for line in open(sys.argv[1]):
    if line.startswith('=='): name = line.strip()[3:]; continue
    if not line.startswith('{'): print('  ', line.strip()[:160]); continue
    d = json.loads(line); r = d['rows'][0]
    out = f"{name:34s} {r['decode_ms_per_step']:.3f} ms (p90 {r['decode_ms_p90']:.3f}, encode {r.get('host_encode_ms_per_step', 0):.3f})"
    for p in d.get('profiles', []):
        if p['phase'] == 'decode':
            ks = ', '.join(f"{k.split()[-2] if k.startswith('matmul') else k.split()[-1]} {v:.3f}" for k, v in p['kernels'].items())
            out += f"\n{'':34s} GPU {p['gpu_ms_per_step']:.3f} one pass, encode {p['encode_ms_per_step']:.2f}: {ks}"
    print(out)
