/* The config reader on large input: 100,000 security rules are checked in a time that
 * grows as n log n, the checks that sort instead of comparing every pair still find what
 * they did, the problems written are capped with one line counting the rest, and a huge
 * value is never echoed whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "config/config.h"

/* How much longer 100,000 rules may take to check than 10,000: n log n gives about 12x,
 * comparing every pair of rules 100x (it took 30 s and 650 MB). Processor time, not the
 * wall clock, so that a loaded machine does not fail the test. */
#define GROWTH_MAX 40.0

/* A buffer that grows: the generated configs are tens of megabytes. */
struct text {
	char *data;
	size_t len, size;
	FILE *f;
};

static void text_open(struct text *t)
{
	memset(t, 0, sizeof(*t));
	t->f = open_memstream(&t->data, &t->size);
	assert_non_null(t->f);
}

static char *text_close(struct text *t)
{
	fclose(t->f);
	return t->data;
}

/* One VNet bound to one interface, with `resources` before it. */
static char *config_with(const char *resources)
{
	char *text;

	assert_true(asprintf(&text,
		"{\"gateway\": {\"name\": \"t\", \"interfaces\": [{\"name\": \"to-a\", "
		"\"virtualNetwork\": \"a\"}]},\n \"resources\": [\n%s"
		"{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "
		"\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n", resources) > 0);
	return text;
}

/* Loads text; returns config_load_string's result with every problem line in *out. */
static int load(const char *text, char **out)
{
	size_t len = 0;
	FILE *errors = open_memstream(out, &len);
	struct config *cfg = NULL;
	int rc = config_load_string(text, "t.json", errors, &cfg);

	fclose(errors);
	config_free(cfg);
	return rc;
}

static void expect(const char *resources, int count, const char *expected)
{
	char *text = config_with(resources), *got = NULL;
	int rc = load(text, &got);

	if (strcmp(got, expected))
		fail_msg("--- got\n%s--- expected\n%s", got, expected);
	assert_int_equal(rc, count);
	free(got);
	free(text);
}

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

static double cpu_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

#define PRIORITIES (4096 - 100 + 1)

/* One NSG of `rules` rules with unique names: only 2 x 3,997 (direction, priority) pairs
 * exist, so every later rule repeats a priority of its direction. */
static char *rules_config(int rules)
{
	struct text t;

	text_open(&t);
	fputs("{\"gateway\": {\"name\": \"t\", \"interfaces\": [{\"name\": \"to-a\", "
	      "\"virtualNetwork\": \"a\"}]},\n \"resources\": [\n"
	      "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"n\", "
	      "\"securityRules\": [\n", t.f);
	for (int i = 0; i < rules; i++)
		fprintf(t.f, "%s{\"name\": \"rule-%d\", \"priority\": %d, \"direction\": \"%s\", "
			"\"access\": \"Allow\", \"protocol\": \"Tcp\", \"sourceAddressPrefix\": \"*\", "
			"\"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", "
			"\"destinationPortRange\": \"80\"}\n", i ? "," : "", i,
			100 + (i / 2) % PRIORITIES, i % 2 ? "Outbound" : "Inbound");
	fputs("]},\n{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "
	      "\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n", t.f);
	return text_close(&t);
}

/* Checks a config of `rules` rules; returns the processor time it took, its problems in
 * *problems. */
static double check_rules(int rules, char **problems)
{
	char *text = rules_config(rules);
	double start = cpu_seconds(), took;

	assert_int_equal(load(text, problems), rules - 2 * PRIORITIES);
	took = cpu_seconds() - start;
	free(text);
	return took;
}

static void security_rules_100000_are_checked_in_n_log_n(void **state)
{
	char *problems = NULL;
	double small = check_rules(10000, &problems), large;

	free(problems);
	large = check_rules(100000, &problems);
	print_message("10,000 rules checked in %.3f s, 100,000 in %.3f s\n", small, large);
	assert_true(large < GROWTH_MAX * small);
	/* the 3,998th Inbound rule is the first to repeat a priority: 100, of rule-0 */
	assert_non_null(strstr(problems, ": resources[0].securityRules[7994].priority: priority "
			       "100 is already used by Inbound rule \"rule-0\"; allowed: a "
			       "priority unique per direction\n"));
	free(problems);
}

/* Names compared without case across inline rules and rules declared as resources; a
 * priority repeated in one direction but not across the two; a third rule of a priority
 * is reported once, against the first. */
static void duplicate_rule_names_and_priorities_are_reported(void **state)
{
#define RULE(name, priority, direction) \
	"{\"name\": \"" name "\", \"priority\": " #priority ", \"direction\": \"" direction \
	"\", \"access\": \"Allow\", \"protocol\": \"*\", \"sourceAddressPrefix\": \"*\", " \
	"\"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", " \
	"\"destinationPortRange\": \"*\"}"
	expect("{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"n\", "
	       "\"securityRules\": [\n"
	       RULE("web", 100, "Inbound") ",\n"
	       RULE("out", 100, "Outbound") ",\n"
	       RULE("WEB", 200, "Inbound") ",\n"
	       RULE("second", 100, "Inbound") ",\n"
	       RULE("third", 100, "Inbound") "]},\n"
	       "{\"type\": \"Microsoft.Network/networkSecurityGroups/securityRules\", "
	       "\"name\": \"n/Web\", \"priority\": 300, \"direction\": \"Inbound\", "
	       "\"access\": \"Deny\", \"protocol\": \"*\", \"sourceAddressPrefix\": \"*\", "
	       "\"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", "
	       "\"destinationPortRange\": \"*\"},\n"
	       "{\"type\": \"Microsoft.Network/networkSecurityGroups/securityRules\", "
	       "\"name\": \"n/fourth\", \"priority\": 100, \"direction\": \"inbound\", "
	       "\"access\": \"Deny\", \"protocol\": \"*\", \"sourceAddressPrefix\": \"*\", "
	       "\"sourcePortRange\": \"*\", \"destinationAddressPrefix\": \"*\", "
	       "\"destinationPortRange\": \"*\"},\n", 5,
	       "t.json:6:10: resources[0].securityRules[2].name: duplicate security rule name \"WEB\" in network security group \"n\"; allowed: unique names, compared without case\n"
	       "t.json:7:32: resources[0].securityRules[3].priority: priority 100 is already used by Inbound rule \"web\"; allowed: a priority unique per direction\n"
	       "t.json:8:31: resources[0].securityRules[4].priority: priority 100 is already used by Inbound rule \"web\"; allowed: a priority unique per direction\n"
	       "t.json:9:75: resources[1].name: duplicate security rule name \"Web\" in network security group \"n\"; allowed: unique names, compared without case\n"
	       "t.json:10:99: resources[2].priority: priority 100 is already used by Inbound rule \"web\"; allowed: a priority unique per direction\n");
#undef RULE
}

/* The other checks that sort: resource names, child names, route prefixes, peerings
 * toward one remote, address spaces and subnets that overlap. A subnet inside two
 * others is reported against the nearest, s3 against s2 and not also against s1. */
static void the_other_duplicate_and_overlap_checks_still_report(void **state)
{
	expect("{\"type\": \"Microsoft.Network/routeTables\", \"name\": \"rt\", \"routes\": [\n"
	       " {\"name\": \"x\", \"addressPrefix\": \"10.9.0.0/16\", \"nextHopType\": \"None\"},\n"
	       " {\"name\": \"y\", \"addressPrefix\": \"10.9.0.0/16\", \"nextHopType\": \"Internet\"},\n"
	       " {\"name\": \"X\", \"addressPrefix\": \"10.8.0.0/16\", \"nextHopType\": \"None\"}]},\n"
	       "{\"type\": \"Microsoft.Network/routeTables\", \"name\": \"RT\"},\n"
	       "{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"b\",\n"
	       " \"addressSpace\": {\"addressPrefixes\": [\"10.1.0.0/16\", \"10.1.4.0/24\", \"10.2.0.0/16\"]},\n"
	       " \"subnets\": [{\"name\": \"s1\", \"addressPrefix\": \"10.1.0.0/20\"},\n"
	       "  {\"name\": \"s2\", \"addressPrefix\": \"10.1.0.0/24\"},\n"
	       "  {\"name\": \"s3\", \"addressPrefix\": \"10.1.0.0/26\"},\n"
	       "  {\"name\": \"s4\", \"addressPrefix\": \"10.2.0.0/24\"}],\n"
	       " \"virtualNetworkPeerings\": [\n"
	       "  {\"name\": \"p1\", \"remoteVirtualNetwork\": {\"id\": \"c\"}},\n"
	       "  {\"name\": \"p2\", \"remoteVirtualNetwork\": {\"id\": \"C\"}}]},\n"
	       "{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"c\",\n"
	       " \"addressSpace\": {\"addressPrefixes\": [\"10.3.0.0/16\"]}},\n", 7,
	       "t.json:6:11: resources[0].routes[2].name: duplicate route name \"X\" in route table \"rt\"; allowed: unique names, compared without case\n"
	       "t.json:5:33: resources[0].routes[1].addressPrefix: 10.9.0.0/16 is already the prefix of route \"x\"; allowed: one route per prefix\n"
	       "t.json:7:51: resources[1].name: duplicate routeTables name \"RT\" (also at resources[0]); allowed: unique names, compared without case\n"
	       "t.json:9:38: resources[2].addressSpace.addressPrefixes: 10.1.4.0/24 overlaps 10.1.0.0/16 in the same address space; allowed: prefixes that do not overlap\n"
	       "t.json:11:3: resources[2].subnets[1]: subnet \"s2\" prefix 10.1.0.0/24 overlaps subnet \"s1\" prefix 10.1.0.0/20; allowed: subnets that do not overlap\n"
	       "t.json:12:3: resources[2].subnets[2]: subnet \"s3\" prefix 10.1.0.0/26 overlaps subnet \"s2\" prefix 10.1.0.0/24; allowed: subnets that do not overlap\n"
	       "t.json:16:42: resources[2].virtualNetworkPeerings[1].remoteVirtualNetwork: \"b\" is already peered with \"C\" by peering \"p1\"; allowed: one peering per remote virtual network\n");
}

static void interfaces_and_vnets_listed_twice_are_reported(void **state)
{
	char *got = NULL;
	int rc = load("{\"gateway\": {\"name\": \"t\", \"interfaces\": [\n"
		      " {\"name\": \"to-a\", \"virtualNetwork\": \"a\"}, 7,\n"
		      " {\"name\": \"to-b\", \"virtualNetwork\": \"A\"},\n"
		      " {\"name\": \"to-a\", \"virtualNetwork\": \"a\"}],\n"
		      " \"virtualNetworks\": [{\"name\": \"a\", \"vip\": \"203.0.113.1\"},\n"
		      "  {\"name\": \"A\", \"vip\": \"203.0.113.2\"}]},\n"
		      " \"resources\": [{\"type\": \"Microsoft.Network/virtualNetworks\", "
		      "\"name\": \"a\", \"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n",
		      &got);
	const char *expected =
		"t.json:2:43: gateway.interfaces[1]: an integer where an object is expected\n"
		"t.json:4:11: gateway.interfaces[3].name: interface \"to-a\" is listed twice; allowed: each interface once\n"
		"t.json:6:12: gateway.virtualNetworks[1].name: virtual network \"a\" is listed twice; allowed: once, with \"vips\" for several VIPs\n";

	if (strcmp(got, expected))
		fail_msg("--- got\n%s--- expected\n%s", got, expected);
	assert_int_equal(rc, 3);
	free(got);
}

/* 150 problems: the first 100 written, then one line for the other 50. */
static void problems_written_are_capped_with_a_count_of_the_rest(void **state)
{
	struct text t;
	char *resources, *text, *got = NULL, *last;
	int rc;

	text_open(&t);
	for (int i = 0; i < 150; i++)
		fprintf(t.f, "{\"type\": \"Microsoft.Network/routeTables\", \"name\": \"rt%d\", "
			"\"routes\": [{\"name\": \"r\", \"addressPrefix\": \"10.0.0.1/16\", "
			"\"nextHopType\": \"None\"}]},\n", i);
	resources = text_close(&t);
	text = config_with(resources);
	rc = load(text, &got);
	assert_int_equal(rc, 150);
	assert_int_equal(count_lines(got), 101);
	last = strrchr(got, '\n');
	*last = '\0';
	last = strrchr(got, '\n') + 1;
	assert_string_equal(last, "t.json: 50 more problems not shown (the first 100 are)");
	assert_non_null(strstr(got, "resources[99].routes[0].addressPrefix"));
	assert_null(strstr(got, "resources[100]."));
	free(got);
	free(text);
	free(resources);
}

#define HUGE (10 * 1024 * 1024)

/* A 10 MB string as a value, as a name and as a key: each message stays short and says
 * how long the value was. */
static void a_10_mb_value_gives_a_short_message(void **state)
{
	char *huge = malloc(HUGE + 1), *text, *got = NULL;
	int rc;

	assert_non_null(huge);
	memset(huge, 'x', HUGE);
	huge[HUGE] = '\0';
	assert_true(asprintf(&text,
		"{\"gateway\": {\"name\": \"t\", \"interfaces\": [{\"name\": \"to-a\", "
		"\"virtualNetwork\": \"a\"}]}, \"%s\": 1,\n \"resources\": [\n"
		"{\"type\": \"Microsoft.Network/routeTables\", \"name\": \"rt\", \"routes\": [\n"
		" {\"name\": \"r\", \"addressPrefix\": \"%s\", \"nextHopType\": \"None\"},\n"
		" {\"name\": \"%s\", \"addressPrefix\": \"10.1.0.0/16\", \"nextHopType\": \"None\"}]},\n"
		"{\"type\": \"Microsoft.Network/virtualNetworks\", \"name\": \"a\", "
		"\"addressSpace\": {\"addressPrefixes\": [\"10.0.0.0/16\"]}}]}\n", huge, huge,
		huge) > 0);
	rc = load(text, &got);
	assert_true(strlen(got) < 3 * 400);
	assert_int_equal(rc, 3);
	assert_int_equal(count_lines(got), 3);
	assert_non_null(strstr(got, "xxx... (10485760 bytes): unknown key; allowed: gateway, "
			       "resources\n"));
	assert_non_null(strstr(got, "resources[0].routes[0].addressPrefix: \"xxx"));
	assert_non_null(strstr(got, "xxx... (10485760 bytes)\" is not a CIDR prefix"));
	assert_non_null(strstr(got, "resources[0].routes[1].name: a name of 10485760 characters; "
			       "allowed: 1-127\n"));
	free(got);
	free(text);
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(security_rules_100000_are_checked_in_n_log_n),
		cmocka_unit_test(duplicate_rule_names_and_priorities_are_reported),
		cmocka_unit_test(the_other_duplicate_and_overlap_checks_still_report),
		cmocka_unit_test(interfaces_and_vnets_listed_twice_are_reported),
		cmocka_unit_test(problems_written_are_capped_with_a_count_of_the_rest),
		cmocka_unit_test(a_10_mb_value_gives_a_short_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
