#!/usr/bin/env bash
# The GoToLocal throughput grid of issue 10 on a lent GPU machine (16 cores + one GPU, its own CUDA torch, no package
# index), as run on 2026-11-27 (README "BabyAI-GoToLocal: the paper's benchmark, on CPU and GPU"). From the
# project root, with the wheels of ../shared/device/fetch_wheels.sh in .whl/ (carried): five processes at once on
# otherwise idle cores -- the GPU sweep over n_envs, the same on 8 CPU threads, the one-thread ratio (3 rounds each, the
# zoo's core and the paper's), the fast_span and num_units sweeps -- plus the CUDA tests; everything is packed into
# $OUT/gotolocal.tar.gz (about 6 minutes). benchmarks/gotolocal/h200/ holds the 2026-11-27 result, measured with the
# paper's core before the benchmark's base setting became the zoo's default core (2026-12-03).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
R=$OUT/gotolocal; mkdir -p $R/gpu $R/cpu8 $R/ratio $R/fast_span $R/num_units
B="python3 scripts/benchmark_throughput.py --case gotolocal --rollouts 2"
T=480
run() { local d=$1; shift; (timeout $T "$@" 2>&1 | grep -v Sampling > $R/$d/log.txt) & }
run gpu $B --device cuda --repeats 2 --sweep n_envs --out $R/gpu
run cpu8 env OMP_NUM_THREADS=8 $B --torch-threads 8 --repeats 1 --sweep n_envs --out $R/cpu8
run ratio $B --repeats 3 --sweep core --out $R/ratio
run fast_span $B --repeats 2 --sweep fast_span --out $R/fast_span
run num_units $B --repeats 2 --sweep num_units --out $R/num_units
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_rim.py tests/test_fused_cores.py -x 2>&1 | tail -4 > $R/tests.txt
wait
python3 scripts/benchmark_throughput.py --compare $R/cpu8/gotolocal_cpu.csv $R/gpu/gotolocal_cuda.csv --out $R > /dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $R/gpu.txt; lscpu | head -20 > $R/cpu.txt
cat $R/tests.txt; for d in gpu cpu8 ratio fast_span num_units; do echo "== $d"; grep "^|" $R/$d/*.md 2>/dev/null | cut -c1-150 || tail -3 $R/$d/log.txt; done
tar czf $OUT/gotolocal.tar.gz -C $OUT gotolocal && rm -rf $R
