# Summarises a run's bench.txt (fury bench --json, labelled "== name"): prefill tokens/s, its steps and passes, decode ms, and
# with --profile the GPU ms of a prefill step in one pass and each op's (or with FURY_PROFILE_KERNELS=1 each kernel's).
import json,sys
name=None
for line in open(sys.argv[1]):
    if line.startswith('=='): name=line.strip()[3:]; continue
    if not line.startswith('{'): print('  ',line[:200].strip()); continue
    d=json.loads(line); r=d['rows'][0]
    out=f"{name:22s} prefill {r['prefill_tokens_per_s']/1e3:.1f}k steps {[round(x,1) for x in r['prefill_step_ms']]} passes {[round(p['tokens_per_s']/1e3,1) for p in r['prefill_passes']]} dec {r['decode_ms_per_step']:.3f}"
    for p in d.get('profiles',[]):
        if p['phase']=='prefill':
            ks=', '.join(f"{k.replace('matmul ','')} {v:.2f}" for k,v in p['kernels'].items())
            out+=f"\n{'':22s} GPU {p['gpu_ms_per_step']:.2f} enc {p['encode_ms_per_step']:.2f}: {ks}"
    print(out)
