# Source from the repository root on the GPU box: the repo and the unpacked vLLM (/tmp/site) on PYTHONPATH, NVLink
# multicast off everywhere (also in every vLLM server: the orchestrator passes its environment on), offline vLLM.
export PYTHONPATH="$PWD:${SITE:-/tmp/site}${PYTHONPATH:+:$PYTHONPATH}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 VLLM_ALLREDUCE_USE_SYMM_MEM=0
export VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export PYTHONUNBUFFERED=1
