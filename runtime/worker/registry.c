/* registry.c - the actor types this process knows (SPOKE_REGISTER_ACTOR).
 * A fixed table: registration runs from constructors, before main(), and
 * must not allocate or fail in surprising ways. */
#include <stdio.h>
#include <string.h>

#include <spoke/actor.h>
#include <spoke/errors.h>

#include "errmsg.h"

static const spoke_actor_type *types[SPOKE_MAX_TYPES];
static size_t n_types;

int spoke_actor_type_register(const spoke_actor_type *type)
{
	spk_api_enter();
	if (!type)
		return spk_api_ret(spk_api_null(__func__, "type"));
	if (!type->name || !type->name[0] || strlen(type->name) >= SPOKE_TYPE_NAME_MAX)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "actor type name missing or longer than %d "
					    "bytes", SPOKE_TYPE_NAME_MAX - 1));
	if (type->n_methods && !type->methods)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "actor type %s: %zu methods, no table",
					    type->name, type->n_methods));
	for (size_t i = 0; i < type->n_methods; i++)
		if (!type->methods[i].fn)
			return spk_api_ret(spk_fail(SPOKE_EINVAL, "actor type %s: method %u has no "
						    "function", type->name, type->methods[i].id));
	if (spoke_actor_type_find(type->name))
		return spk_api_ret(spk_fail(SPOKE_EEXIST, "actor type %s is registered already",
					    type->name));
	if (n_types == SPOKE_MAX_TYPES)
		return spk_api_ret(spk_fail(SPOKE_ENOSPC, "more than %d actor types",
					    SPOKE_MAX_TYPES));
	types[n_types++] = type;
	return spk_api_ret(0);
}

const spoke_actor_type *spoke_actor_type_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < n_types; i++)
		if (!strcmp(types[i]->name, name))
			return types[i];
	return NULL;
}

void spoke_actor_type_list(char *buf, size_t cap)
{
	size_t len = 0;

	if (cap)
		buf[0] = '\0';
	for (size_t i = 0; i < n_types && len < cap; i++) {
		int n = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", types[i]->name);

		if (n < 0)
			break;
		len += (size_t)n;
	}
}
