// SPDX-License-Identifier: MIT
#include "cadence.h"

uint64_t cadence_jitter(uint64_t ms, uint32_t rnd)
{
	uint64_t span = ms * CADENCE_JITTER_PCT / 100;

	return ms - (uint64_t)rnd % (span + 1);
}

uint64_t cadence_step(uint64_t interval_ms, size_t n)
{
	uint64_t step = n ? interval_ms / n : interval_ms;

	return step ? step : 1;
}
