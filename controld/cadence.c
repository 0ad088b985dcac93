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

size_t cadence_ticks(size_t n)
{
	return (n + CADENCE_GROUP_MAX - 1) / CADENCE_GROUP_MAX;
}

size_t cadence_group(size_t n)
{
	size_t ticks = cadence_ticks(n);

	return ticks ? (n + ticks - 1) / ticks : 0;
}

uint64_t cadence_prompt(size_t k, size_t n, uint64_t interval_ms, uint32_t rnd)
{
	uint64_t gap = cadence_step(interval_ms, n);

	if (gap > CADENCE_PROMPT_GAP_MS)
		gap = CADENCE_PROMPT_GAP_MS;
	return (uint64_t)k * gap - (k ? (uint64_t)rnd % (gap / 2 + 1) : 0);
}

uint64_t cadence_retry(unsigned fails, uint64_t interval_ms, uint32_t rnd)
{
	uint64_t ms = CADENCE_RETRY_MS;

	for (unsigned i = 1; i < fails && ms < interval_ms; i++)
		ms *= 2;
	return ms < interval_ms ? cadence_jitter(ms, rnd) : 0;
}
