# Summarises a run's bench.txt: per labelled fury bench JSON and batch, decode ms a step (mean, p90), host encode, GC in
# the timed steps (total, longest pause), stalled steps and their excess; prefill passes' step ms and GC.
import json, sys
name = None
for line in open(sys.argv[1]):
    if line.startswith('=='): name = line.strip()[3:]; continue
    if not line.startswith('{'): continue
    for r in json.loads(line)['rows']:
        s = f"{name:16s} b{r['batch']:<3d}"
        if r.get('decode_ms_per_step') is not None and not name.startswith('prefill'):
            s += (f" {r['decode_ms_per_step']:.3f} ms (p90 {r['decode_ms_p90']:.3f}, encode {r.get('host_encode_ms_per_step', 0):.2f})"
                  f" gc {r.get('decode_gc_ms', 0):.0f}/{r.get('decode_gc_max_ms', 0):.0f} ms, stalls {r.get('decode_stall_steps')} (+{r.get('decode_stall_excess_ms', 0):.0f} ms)")
        pp = r.get('prefill_passes') or []
        if pp and name.startswith('prefill'):
            s += ' prefill ' + '; '.join(f"{p.get('tokens_per_s', 0)/1e3:.1f}k tok/s gc {p.get('gc_ms', 0):.0f}/{p.get('gc_max_ms', 0):.0f} steps {','.join(f'{x:.1f}' for x in p.get('step_ms', []))}" for p in pp)
            
        print(s)
