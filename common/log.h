/* SPDX-License-Identifier: MIT */
/*
 * log: one line per event on stderr, in the prototype's style: "[area] text".
 * Warnings and errors carry their level ("[area] error: text"). Never pass
 * key material other than public keys.
 */
#ifndef P2PWG_LOG_H
#define P2PWG_LOG_H

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the threshold; messages above it are dropped. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parse "error", "warn", "info" or "debug"; -1 if unknown. */
int log_level_parse(const char *s);

/* Log one line. area is a short tag such as "wg", "agent", "http". */
void log_msg(enum log_level level, const char *area, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(area, ...) log_msg(LOG_LVL_ERROR, area, __VA_ARGS__)
#define log_warn(area, ...) log_msg(LOG_LVL_WARN, area, __VA_ARGS__)
#define log_info(area, ...) log_msg(LOG_LVL_INFO, area, __VA_ARGS__)
#define log_debug(area, ...) log_msg(LOG_LVL_DEBUG, area, __VA_ARGS__)

#endif
