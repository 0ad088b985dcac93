// SPDX-License-Identifier: MIT
#include "attest.h"

#include <errno.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "b64.h"
#include "hex.h"
#include "jsondoc.h"
#include "log.h"
#include "nodeinfo.h"
#include "reason.h"

#define VERIFY_TIMEOUT_MS 15000 /* the verifier may fetch Intel's collateral first */
#define VERIFIER_RETRY_MS 5000	/* after a failure, before the next verification */
#define QUOTE_RETRY_MS 10000	/* after the guest agent failed */
#define QUOTE_MIN_GAP_MS 5000	/* at most one quote per 5 s, whatever changes */
#define NO_AGENT_RECHECK_MS 60000

/* ==== the pure parts ==== */

static void sha256(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn,
		   uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 32;

	memset(out, 0, 32);
	if (!ctx)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
	    EVP_DigestUpdate(ctx, b, bn) != 1 || EVP_DigestUpdate(ctx, c, cn) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx);
}

void attest_binding(const uint8_t key[32], const char *updated_at, uint8_t out[64])
{
	memset(out, 0, 64);
	sha256(ATTEST_LABEL, strlen(ATTEST_LABEL), key, 32, updated_at, strlen(updated_at), out);
}

/* "2026-11-28T18:05:12[.ffffff](+00:00|Z)", as nodeinfo_time writes it. */
static int parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!p)
		return -EINVAL;
	if (*p == '.') {
		size_t n = strspn(p + 1, "0123456789");

		if (!n || n > 9)
			return -EINVAL;
		p += 1 + n;
	}
	if (strcmp(p, "+00:00") && strcmp(p, "Z"))
		return -EINVAL;
	*out = timegm(&tm);
	return *out == (time_t)-1 ? -EINVAL : 0;
}

static int str_field(const json_t *o, const char *name, bool required, size_t max, char **out,
		     char *why, size_t whylen)
{
	const json_t *v = json_object_get(o, name);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return reason_set(why, whylen, "attestation.%s: missing", name);
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)))
		return reason_set(why, whylen, "attestation.%s: not a string", name);
	if (json_string_length(v) > max)
		return reason_set(why, whylen, "attestation.%s: longer than %zu bytes", name, max);
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

int attest_parse_doc(const char *buf, size_t len, struct attest_doc *out, char *why, size_t whylen)
{
	struct attest_doc d = {0};
	json_t *root = jsondoc_load(buf, len, NODEINFO_MAX_BYTES, why, whylen);
	const json_t *o, *v;
	size_t qn;
	int ret;

	if (!root)
		return -EINVAL;
	o = json_is_object(root) ? json_object_get(root, "attestation") : NULL;
	if (!o || json_is_null(o)) {
		ret = -ENOENT;
		goto out;
	}
	if (!json_is_object(o)) {
		ret = reason_set(why, whylen, "attestation: not an object");
		goto out;
	}
	if ((ret = str_field(o, "quote", true, GUESTAGENT_QUOTE_MAX, &d.quote, why, whylen)))
		goto out;
	qn = strlen(d.quote);
	if (!qn || qn % 2 || !hex_valid(d.quote, qn)) {
		ret = reason_set(why, whylen, "attestation.quote: not hex bytes");
		goto out;
	}
	if ((ret = str_field(o, "event_log", true, GUESTAGENT_EVENTLOG_MAX, &d.event_log, why,
			     whylen)) ||
	    (ret = str_field(o, "vm_config", false, GUESTAGENT_VMCONFIG_MAX, &d.vm_config, why,
			     whylen)))
		goto out;
	v = json_object_get(o, "updated_at");
	if (!json_is_string(v) || json_string_length(v) >= sizeof(d.updated_at) ||
	    json_string_length(v) != strlen(json_string_value(v)) ||
	    parse_time(json_string_value(v), &d.at)) {
		ret = reason_set(why, whylen, "attestation.updated_at: not an ISO 8601 UTC time");
		goto out;
	}
	snprintf(d.updated_at, sizeof(d.updated_at), "%s", json_string_value(v));
	v = json_object_get(o, "app_id");
	if (json_is_string(v) &&
	    !guestagent_hex_norm(json_string_value(v), d.app_id, sizeof(d.app_id)))
		d.app_id[0] = '\0';
	sha256(d.quote, qn, "", 0, "", 0, d.digest);
	*out = d;
	memset(&d, 0, sizeof(d));
	ret = 0;
out:
	attest_doc_free(&d);
	json_decref(root);
	return ret;
}

void attest_doc_free(struct attest_doc *d)
{
	if (!d)
		return;
	free(d->quote);
	free(d->event_log);
	free(d->vm_config);
	memset(d, 0, sizeof(*d));
}

char *attest_verify_request(const struct attest_doc *d)
{
	json_t *o = json_object();
	char *doc = NULL;

	if (!o)
		return NULL;
	if (!json_object_set_new(o, "quote", json_string(d->quote)) &&
	    !json_object_set_new(o, "event_log", json_string(d->event_log)) &&
	    !json_object_set_new(o, "vm_config", json_string(d->vm_config)))
		doc = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return doc;
}

static int verdict_id(const json_t *info, const char *name, char *out, char *why, size_t whylen)
{
	const json_t *v = json_object_get(info, name);

	out[0] = '\0';
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)) ||
	    !guestagent_hex_norm(json_string_value(v), out, GUESTAGENT_ID_MAX + 1))
		return reason_set(why, whylen, "details.app_info.%s: not hex of at most %d digits",
				  name, GUESTAGENT_ID_MAX);
	return 0;
}

int attest_parse_verdict(const char *buf, size_t len, struct attest_verdict *out, char *why,
			 size_t whylen)
{
	struct attest_verdict vd = {0};
	json_t *root = jsondoc_load(buf, len, ATTEST_VERDICT_MAX_BYTES, why, whylen);
	const json_t *v, *det, *info;
	int ret = 0;

	if (!root)
		return -EINVAL;
	if (!json_is_object(root)) {
		ret = reason_set(why, whylen, "not a JSON object");
		goto out;
	}
	v = json_object_get(root, "is_valid");
	if (!json_is_boolean(v)) {
		ret = reason_set(why, whylen, "is_valid: not a boolean");
		goto out;
	}
	vd.is_valid = json_is_true(v);
	v = json_object_get(root, "reason");
	if (json_is_string(v))
		safetext_copy(vd.reason, sizeof(vd.reason), json_string_value(v),
			      json_string_length(v));
	det = json_object_get(root, "details");
	if (!json_is_object(det)) {
		ret = reason_set(why, whylen, "details: not an object");
		goto out;
	}
	v = json_object_get(det, "report_data");
	if (v && !json_is_null(v)) {
		const char *s = json_string_value(v);

		if (s && (!strncmp(s, "0x", 2)))
			s += 2;
		if (!s || strlen(s) != 128 || !hex_decode(s, vd.report_data, 64)) {
			ret = reason_set(why, whylen, "details.report_data: not hex of 64 bytes");
			goto out;
		}
		vd.has_report_data = true;
	}
	info = json_object_get(det, "app_info");
	if (info && !json_is_null(info)) {
		if (!json_is_object(info)) {
			ret = reason_set(why, whylen, "details.app_info: not an object");
			goto out;
		}
		if ((ret = verdict_id(info, "app_id", vd.app_id, why, whylen)) ||
		    (ret = verdict_id(info, "compose_hash", vd.compose_hash, why, whylen)) ||
		    (ret = verdict_id(info, "instance_id", vd.instance_id, why, whylen)))
			goto out;
		vd.has_app_info = true;
	}
	*out = vd;
out:
	json_decref(root);
	return ret;
}

/* Normalise a comma separated list of hex ids into out. */
static int norm_list(const char *in, char *out, size_t cap)
{
	char buf[2048], *save = NULL, *tok, id[GUESTAGENT_ID_MAX + 1];
	size_t used = 0;

	out[0] = '\0';
	snprintf(buf, sizeof(buf), "%s", in);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (!guestagent_hex_norm(tok, id, sizeof(id)) || !id[0])
			return -EINVAL;
		if (used + strlen(id) + 2 > cap)
			return -EINVAL;
		used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? "," : "", id);
	}
	return 0;
}

static bool list_has(const char *list, const char *id)
{
	size_t n = strlen(id);

	for (const char *p = list; *id && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !memcmp(p, id, n))
			return true;
		p += len + (end ? 1 : 0);
	}
	return false;
}

int attest_rules_init(struct attest_rules *r, const struct config *c)
{
	memset(r, 0, sizeof(*r));
	r->max_age_s = c->attest_max_age_s ? c->attest_max_age_s : 3600;
	if (norm_list(c->allow_app_ids, r->app_ids, sizeof(r->app_ids)) ||
	    norm_list(c->allow_compose_hashes, r->compose_hashes, sizeof(r->compose_hashes)))
		return -EINVAL;
	return 0;
}

/* A policy's refusal: the reason (made of our text, hex ids and the
 * verifier's sanitised reason) and -EACCES. */
static int refuse(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EACCES;
}

/* The first 16 hex digits of an id, enough to tell apps apart in a log line. */
static void shortid(const char *id, char *out)
{
	const char *s = id[0] ? id : "(none)";
	size_t n = strnlen(s, 16);

	memcpy(out, s, n);
	out[n] = '\0';
}

int attest_check(const struct attest_rules *r, const uint8_t key[32], const struct attest_doc *d,
		 const struct attest_verdict *v, time_t now, char *why, size_t whylen)
{
	uint8_t want[64];
	char id[17];

	if (!v->is_valid)
		return refuse(why, whylen, "attestation refused by the verifier: %s",
			      v->reason[0] ? v->reason : "no reason given");
	attest_binding(key, d->updated_at, want);
	if (!v->has_report_data || memcmp(want, v->report_data, 64))
		return refuse(why, whylen,
			      "attestation: the quote does not bind this node's key and updated_at "
			      "(report_data differs)");
	/* Reasons stay the same from one poll to the next (no age in seconds):
	 * a changed reason is logged again. updated_at passed parse_time. */
	if (now - d->at > (time_t)r->max_age_s)
		return refuse(why, whylen, "attestation: stale, quoted at %s, more than %u s ago",
			      d->updated_at, r->max_age_s);
	if (d->at - now > ATTEST_FUTURE_S)
		return refuse(why, whylen,
			      "attestation: quoted at %s, more than %d s in the future",
			      d->updated_at, ATTEST_FUTURE_S);
	if (!v->has_app_info)
		return refuse(why, whylen, "attestation: the verifier named no app");
	if (r->app_ids[0] && !list_has(r->app_ids, v->app_id)) {
		shortid(v->app_id, id);
		return refuse(why, whylen, "attestation: app_id %s is not in P2PWG_ALLOW_APP_IDS",
			      id);
	}
	if (r->compose_hashes[0] && !list_has(r->compose_hashes, v->compose_hash)) {
		shortid(v->compose_hash, id);
		return refuse(why, whylen,
			      "attestation: compose_hash %s is not in P2PWG_ALLOW_COMPOSE_HASHES",
			      id);
	}
	return 0;
}

/* ==== the running state ==== */

struct apeer {
	uint8_t key[32];
	bool has_doc;
	struct attest_doc doc;
	char doc_err[PEERSET_WHY];
	bool has_verdict;
	uint8_t verdict_digest[32];
	struct attest_verdict verdict;
	bool admitted; /* the last quote decided on was admitted */
	void *fetch;
	uint8_t fetch_digest[32];
	unsigned seen; /* attest_vet generation last listed */
	struct attest *a;
};

struct attest {
	const struct config *c;
	struct loop *l;
	void (*changed)(void *arg);
	void *arg;
	struct attest_rules rules;
	bool enforcing;

	/* this node */
	bool have_key;
	uint8_t key[32];
	struct loop_timer t_quote;
	void *ga_fetch;
	bool have_info;
	struct guestagent_info info;
	char *published; /* the "attestation" object as JSON text, or NULL */
	char self_at[40];
	char self_err[200];
	bool said_no_agent;
	uint64_t last_quote_ms;
	uint8_t asked[64];
	char asked_at[40];

	/* peers */
	struct apeer **p;
	size_t n;
	unsigned gen;
	size_t inflight;
	bool verifier_down;
	char verifier_err[200];
	uint64_t verifier_retry_at;
	uint64_t m_verify_ok, m_verify_fail;
};

/* ---- this node ---- */

static void quote_soon(struct attest *a, uint64_t ms)
{
	uint64_t now = loop_now(a->l), gap = a->last_quote_ms + QUOTE_MIN_GAP_MS;

	if (a->last_quote_ms && now + ms < gap)
		ms = gap - now;
	loop_timer_arm(a->l, &a->t_quote, ms);
}

static void self_fail(struct attest *a, const char *what, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s: %s", what, why);
	safetext_copy(msg, sizeof(msg), msg, sizeof(msg));
	if (strcmp(a->self_err, msg))
		log_warn("attest", "dstack guest agent %s; %s", msg,
			 a->published ? "keeping the last quote"
				      : "node.json carries no attestation yet");
	snprintf(a->self_err, sizeof(a->self_err), "%s", msg);
	quote_soon(a, QUOTE_RETRY_MS);
}

/* Whether the guest agent's answer failed before its body (transport, status,
 * size); why says how. curl_easy_strerror, not curl's message, which varies
 * with timings: a failure that lasts is logged once. */
static bool ga_failed(const struct fetch_result *r, char *why, size_t size)
{
	if (r->code != CURLE_OK)
		snprintf(why, size, "%s", curl_easy_strerror(r->code));
	else if (r->status != 200)
		snprintf(why, size, "HTTP %ld", r->status);
	else if (r->truncated)
		snprintf(why, size, "answer larger than %d bytes", GUESTAGENT_MAX_BYTES);
	else
		return false;
	return true;
}
static void on_quote(void *arg, const struct fetch_result *r)
{
	struct attest *a = arg;
	struct guestagent_quote q = {0};
	char why[200] = "", idl[17];
	json_t *o;
	char *text;

	a->ga_fetch = NULL;
	if (!ga_failed(r, why, sizeof(why)) &&
	    !guestagent_parse_quote(r->body, r->len, &q, why, sizeof(why)) &&
	    memcmp(q.report_data, a->asked, 64))
		snprintf(why, sizeof(why), "the quote carries other report_data than asked");
	if (why[0]) {
		guestagent_quote_free(&q);
		self_fail(a, "/GetQuote", why);
		return;
	}
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "version", 1, "updated_at",
		      a->asked_at, "app_id", a->info.app_id, "instance_id", a->info.instance_id,
		      "compose_hash", a->info.compose_hash, "quote", q.quote, "event_log",
		      q.event_log, "vm_config", q.vm_config);
	guestagent_quote_free(&q);
	/* Serialised once here, spliced into every node.json served. */
	text = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	if (!text) {
		self_fail(a, "/GetQuote", "out of memory");
		return;
	}
	free(a->published);
	a->published = text;
	shortid(a->info.app_id, idl);
	log_msg(a->self_at[0] && !a->self_err[0] ? LOG_LVL_DEBUG : LOG_LVL_INFO, "attest",
		"quote for this node's key published (app_id %s, updated_at %s); next in %u s", idl,
		a->asked_at, a->rules.max_age_s / 3);
	snprintf(a->self_at, sizeof(a->self_at), "%s", a->asked_at);
	a->self_err[0] = '\0';
	quote_soon(a, (uint64_t)a->rules.max_age_s / 3 * 1000);
}

static void ask_quote(struct attest *a)
{
	long long now = (long long)time(NULL);

	nodeinfo_time(now, 0, a->asked_at, sizeof(a->asked_at));
	attest_binding(a->key, a->asked_at, a->asked);
	a->last_quote_ms = loop_now(a->l);
	a->ga_fetch = guestagent_quote_start(a->l, a->c->dstack_socket, a->asked, on_quote, a);
	if (!a->ga_fetch)
		self_fail(a, "/GetQuote", "cannot start the request");
}

static void on_info(void *arg, const struct fetch_result *r)
{
	struct attest *a = arg;
	char why[200] = "";

	a->ga_fetch = NULL;
	if (!ga_failed(r, why, sizeof(why)))
		guestagent_parse_info(r->body, r->len, &a->info, why, sizeof(why));
	if (why[0]) {
		self_fail(a, "/Info", why);
		return;
	}
	a->have_info = true;
	log_info("attest", "dstack guest agent at %s: app_id %s, instance_id %s, compose_hash %s",
		 a->c->dstack_socket, a->info.app_id,
		 a->info.instance_id[0] ? a->info.instance_id : "-",
		 a->info.compose_hash[0] ? a->info.compose_hash : "-");
	if (a->have_key)
		ask_quote(a);
}

static void quote_now(void *arg)
{
	struct attest *a = arg;
	struct stat st;

	if (a->ga_fetch || !a->c->dstack_socket[0])
		return;
	if (stat(a->c->dstack_socket, &st) || !S_ISSOCK(st.st_mode)) {
		/* Not on dstack (or the socket is not mounted): work as without it. */
		if (!a->said_no_agent)
			log_info("attest",
				 "no dstack guest agent at %s; node.json carries no attestation",
				 a->c->dstack_socket);
		a->said_no_agent = true;
		loop_timer_arm(a->l, &a->t_quote, NO_AGENT_RECHECK_MS);
		return;
	}
	a->said_no_agent = false;
	if (!a->have_info) {
		a->ga_fetch = guestagent_info_start(a->l, a->c->dstack_socket, on_info, a);
		if (!a->ga_fetch)
			self_fail(a, "/Info", "cannot start the request");
		return;
	}
	if (a->have_key)
		ask_quote(a);
}

void attest_set_key(struct attest *a, const uint8_t key[32])
{
	if (!a || (a->have_key && !memcmp(a->key, key, 32)))
		return;
	if (a->have_key) {
		/* The old quote binds the old key: useless to peers from now on. */
		free(a->published);
		a->published = NULL;
		a->self_at[0] = '\0';
	}
	memcpy(a->key, key, 32);
	a->have_key = true;
	if (a->ga_fetch) {
		fetch_cancel(a->l, a->ga_fetch);
		a->ga_fetch = NULL;
	}
	quote_soon(a, 0);
}

char *attest_publish(struct attest *a, char *doc)
{
	size_t n, m;
	char *out;

	if (!a || !doc || !a->published)
		return doc;
	/* nodeinfo_format writes one object: insert the member before its '}'. */
	n = strlen(doc);
	m = strlen(a->published);
	if (n < 2 || doc[n - 1] != '}') {
		free(doc);
		return NULL;
	}
	out = malloc(n + m + sizeof(", \"attestation\": "));
	if (out)
		sprintf(out, "%.*s%s\"attestation\": %s}", (int)(n - 1), doc, n > 2 ? ", " : "",
			a->published);
	free(doc);
	return out;
}

/* ---- peers ---- */

static struct apeer *peer_find(struct attest *a, const uint8_t key[32])
{
	for (size_t i = 0; i < a->n; i++)
		if (!memcmp(a->p[i]->key, key, 32))
			return a->p[i];
	return NULL;
}

static void peer_free(struct attest *a, struct apeer *p)
{
	if (p->fetch) {
		fetch_cancel(a->l, p->fetch);
		a->inflight--;
	}
	attest_doc_free(&p->doc);
	free(p);
}

void attest_note(struct attest *a, const uint8_t key[32], const char *body, size_t len)
{
	struct attest_doc d;
	struct apeer *p, **np;
	char why[PEERSET_WHY] = "";
	int ret;

	if (!a || !a->enforcing || (a->have_key && !memcmp(key, a->key, 32)))
		return; /* this node's own entry is never checked */
	p = peer_find(a, key);
	if (!p) {
		if (a->n >= ATTEST_MAX_PEERS)
			return;
		np = realloc(a->p, (a->n + 1) * sizeof(*np));
		if (!np)
			return;
		a->p = np;
		p = calloc(1, sizeof(*p));
		if (!p)
			return;
		memcpy(p->key, key, 32);
		p->a = a;
		p->seen = a->gen;
		a->p[a->n++] = p;
	}
	ret = attest_parse_doc(body, len, &d, why, sizeof(why));
	if (ret == -ENOMEM)
		return; /* keep what we had */
	attest_doc_free(&p->doc);
	p->has_doc = !ret;
	if (!ret)
		p->doc = d;
	if (ret == -ENOENT)
		snprintf(p->doc_err, sizeof(p->doc_err), "attestation: none in its node.json");
	else
		snprintf(p->doc_err, sizeof(p->doc_err), "%s", why);
}

static void set_verifier_down(struct attest *a, const char *why)
{
	size_t kept = 0;

	for (size_t i = 0; i < a->n; i++)
		kept += a->p[i]->admitted;
	/* Said once per outage: curl's message varies with timings. */
	if (!a->verifier_down)
		log_warn(
		    "attest",
		    "verifier %s: %s; keeping the %zu peers verified before, admitting no new one",
		    a->c->verifier_url, why, kept);
	a->verifier_down = true;
	snprintf(a->verifier_err, sizeof(a->verifier_err), "%s", why);
	a->verifier_retry_at = loop_now(a->l) + VERIFIER_RETRY_MS;
}

static void on_verdict(void *arg, const struct fetch_result *r)
{
	struct apeer *p = arg;
	struct attest *a = p->a;
	struct attest_verdict v;
	char why[200] = "";

	p->fetch = NULL;
	a->inflight--;
	if (r->code != CURLE_OK)
		snprintf(why, sizeof(why), "%s", r->error);
	else if (r->status >= 500 || r->status < 200)
		snprintf(why, sizeof(why), "HTTP %ld", r->status);
	else if (r->truncated)
		snprintf(why, sizeof(why), "answer larger than %d bytes", ATTEST_VERDICT_MAX_BYTES);
	else if (attest_parse_verdict(r->body, r->len, &v, why, sizeof(why)) == 0)
		why[0] = '\0';
	else if (r->status != 200) {
		/* A 4xx that is no verdict: the verifier could not read this
		 * peer's quote material, which is the peer's fault. */
		memset(&v, 0, sizeof(v));
		snprintf(v.reason, sizeof(v.reason), "HTTP %ld", r->status);
		why[0] = '\0';
	} /* else a 200 that is not a verdict: the verifier is broken, not the peer */
	safetext_copy(why, sizeof(why), why, sizeof(why));
	if (why[0]) {
		a->m_verify_fail++;
		set_verifier_down(a, why);
		a->changed(a->arg);
		return;
	}
	a->m_verify_ok++;
	if (a->verifier_down)
		log_info("attest", "verifier %s answers again", a->c->verifier_url);
	a->verifier_down = false;
	a->verifier_err[0] = '\0';
	p->has_verdict = true;
	memcpy(p->verdict_digest, p->fetch_digest, 32);
	p->verdict = v;
	a->changed(a->arg);
}

static void verify_start(struct attest *a, struct apeer *p)
{
	struct fetch_opts o = {.timeout_ms = VERIFY_TIMEOUT_MS,
			       .max_bytes = ATTEST_VERDICT_MAX_BYTES,
			       .ca_bundle = a->c->ca_bundle[0] ? a->c->ca_bundle : NULL,
			       .allow_http = true};
	char *body;

	if (p->fetch || a->inflight >= ATTEST_MAX_INFLIGHT ||
	    (a->verifier_down && loop_now(a->l) < a->verifier_retry_at))
		return;
	body = attest_verify_request(&p->doc);
	if (!body)
		return;
	o.post_json = body;
	p->fetch = fetch_start(a->l, a->c->verifier_url, &o, on_verdict, p);
	free(body);
	if (!p->fetch)
		return;
	memcpy(p->fetch_digest, p->doc.digest, 32);
	a->inflight++;
}

/* 0 if admitted, else -EACCES with why. */
static int admit(struct attest *a, struct apeer *p, time_t now, char *why)
{
	if (!p || !p->has_doc) {
		p && p->doc_err[0]
		    ? snprintf(why, PEERSET_WHY, "%s", p->doc_err)
		    : snprintf(why, PEERSET_WHY, "attestation: none in its node.json");
		if (p)
			p->admitted = false;
		return -EACCES;
	}
	if (p->has_verdict && !memcmp(p->verdict_digest, p->doc.digest, 32)) {
		int ret =
		    attest_check(&a->rules, p->key, &p->doc, &p->verdict, now, why, PEERSET_WHY);

		if (!ret && !p->admitted) {
			char k[B64_KEY_LEN + 1], id[17];

			b64_key_encode(p->key, k);
			k[8] = '\0';
			shortid(p->verdict.app_id, id);
			log_info("attest", "peer %s admitted: quote verified, app_id %s", k, id);
		}
		p->admitted = !ret;
		return ret;
	}
	/* A quote not verified yet: ask; a peer admitted on its previous quote
	 * stays meanwhile (and while the verifier is down). */
	verify_start(a, p);
	if (p->admitted)
		return 0;
	if (a->verifier_down)
		snprintf(why, PEERSET_WHY,
			 "attestation: not verified, the verifier is unreachable; "
			 "no new peer is admitted until it answers");
	else
		snprintf(why, PEERSET_WHY, "attestation: waiting for the verifier");
	return -EACCES;
}

void attest_vet(struct attest *a, struct peerset_entry *in, size_t n, const uint8_t self[32],
		char (*why)[PEERSET_WHY])
{
	time_t now = time(NULL);
	size_t k = 0;

	if (!a || !a->enforcing)
		return;
	a->gen++;
	for (size_t i = 0; i < n; i++) {
		struct apeer *p;

		if (!in[i].url || !in[i].known || !memcmp(in[i].info.wg_pubkey, self, 32))
			continue;
		p = peer_find(a, in[i].info.wg_pubkey);
		if (p)
			p->seen = a->gen;
		if (admit(a, p, now, why[i]))
			in[i].refused = why[i];
	}
	/* Forget keys no longer listed (after a few rounds: a list edit in flight). */
	for (size_t i = 0; i < a->n; i++) {
		if (a->gen - a->p[i]->seen > 3)
			peer_free(a, a->p[i]);
		else
			a->p[k++] = a->p[i];
	}
	a->n = k;
}

void attest_metrics(struct attest *a, FILE *f)
{
	size_t admitted = 0;

	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		admitted += a->p[i]->admitted;
	fprintf(f,
		"# HELP p2pwg_attest_quoted 1 while node.json carries the quote of this node\n"
		"# TYPE p2pwg_attest_quoted gauge\np2pwg_attest_quoted %d\n"
		"# HELP p2pwg_attest_peers_admitted peers admitted by their attestation\n"
		"# TYPE p2pwg_attest_peers_admitted gauge\np2pwg_attest_peers_admitted %zu\n"
		"# HELP p2pwg_attest_verifier_up 0 while the verifier cannot be reached\n"
		"# TYPE p2pwg_attest_verifier_up gauge\np2pwg_attest_verifier_up %d\n"
		"# HELP p2pwg_attest_verifications_total answers of the verifier, by outcome\n"
		"# TYPE p2pwg_attest_verifications_total counter\n"
		"p2pwg_attest_verifications_total{result=\"verdict\"} %llu\n"
		"p2pwg_attest_verifications_total{result=\"failed\"} %llu\n",
		a->published ? 1 : 0, admitted, a->verifier_down ? 0 : 1,
		(unsigned long long)a->m_verify_ok, (unsigned long long)a->m_verify_fail);
}

json_t *attest_status(struct attest *a)
{
	json_t *o, *self;
	size_t admitted = 0;

	if (!a)
		return json_null();
	for (size_t i = 0; i < a->n; i++)
		admitted += a->p[i]->admitted;
	self = json_pack(
	    "{s:s?, s:s?, s:s?, s:s?, s:s?}", "app_id", a->have_info ? a->info.app_id : NULL,
	    "instance_id", a->have_info && a->info.instance_id[0] ? a->info.instance_id : NULL,
	    "compose_hash", a->have_info && a->info.compose_hash[0] ? a->info.compose_hash : NULL,
	    "quoted_at", a->self_at[0] ? a->self_at : NULL, "error",
	    a->self_err[0]     ? a->self_err
	    : a->said_no_agent ? "no guest agent"
			       : NULL);
	o = json_pack("{s:o*, s:b, s:s?, s:s?, s:I, s:I, s:I}", "self", self, "enforcing",
		      a->enforcing, "verifier", a->enforcing ? a->c->verifier_url : NULL,
		      "verifier_error", a->verifier_down ? a->verifier_err : NULL, "admitted",
		      (json_int_t)admitted, "verifications_ok", (json_int_t)a->m_verify_ok,
		      "verifications_failed", (json_int_t)a->m_verify_fail);
	return o ? o : json_null();
}

struct attest *attest_new(const struct config *c, struct loop *l, void (*changed)(void *arg),
			  void *arg)
{
	struct attest *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->c = c;
	a->l = l;
	a->changed = changed;
	a->arg = arg;
	if (attest_rules_init(&a->rules, c)) {
		log_err("attest",
			"P2PWG_ALLOW_APP_IDS or P2PWG_ALLOW_COMPOSE_HASHES: not a list of hex ids");
		free(a);
		return NULL;
	}
	a->enforcing = c->verifier_url[0] != '\0';
	a->t_quote = (struct loop_timer){.cb = quote_now, .arg = a};
	if (a->enforcing)
		log_info("attest",
			 "admitting only peers whose quote %s accepts (app_ids %s, compose hashes "
			 "%s, max age %u s)",
			 c->verifier_url, a->rules.app_ids[0] ? a->rules.app_ids : "any",
			 a->rules.compose_hashes[0] ? a->rules.compose_hashes : "any",
			 a->rules.max_age_s);
	return a;
}

void attest_free(struct attest *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		peer_free(a, a->p[i]);
	free(a->p);
	if (a->ga_fetch)
		fetch_cancel(a->l, a->ga_fetch);
	loop_timer_remove(a->l, &a->t_quote);
	free(a->published);
	free(a);
}
