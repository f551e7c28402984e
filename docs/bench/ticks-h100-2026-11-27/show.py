import json,sys
cur=None
for line in open(sys.argv[1]):
    if line.startswith('=='): cur=line[3:].strip(); continue
    if not line.startswith('{'): print(cur, line.strip()[:200]); continue
    d=json.loads(line)
    if 'dawnTicks' in d: print(cur, 'ticks', d['dawnTicks']); continue
    for r in d.get('rows',[]):
        print(cur, {k:(round(v,3) if isinstance(v,float) else v) for k,v in r.items() if k in ['batch','decode_ms_per_step','decode_p90_ms','decode_gc_ms','decode_gc_max_ms','decode_stall_steps','decode_stall_excess_ms','host_encode_ms_per_step']})
