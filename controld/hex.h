/* SPDX-License-Identifier: MIT */
/*
 * hex: the hex text of outside answers (guest agent, verifier, JSON-RPC),
 * checked and decoded strictly: no prefix, no separators, either case.
 */
#ifndef P2PWG_HEX_H
#define P2PWG_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit, or -1. */
int hex_digit(char c);

/* Whether s[0..n) are all hex digits. */
bool hex_valid(const char *s, size_t n);

/* Decode the 2 * n hex digits at s into out[0..n); false (out partly
 * written) if one of them is not a hex digit. */
bool hex_decode(const char *s, uint8_t *out, size_t n);

#endif
