/* registry.c - the actor types this process knows (SPOKE_REGISTER_ACTOR).
 * A fixed table: registration runs from constructors, before main(), and
 * must not allocate or fail in surprising ways. */
#include <stdio.h>
#include <string.h>

#include <spoke/actor.h>
#include <spoke/errors.h>

static const spoke_actor_type *types[SPOKE_MAX_TYPES];
static size_t n_types;

int spoke_actor_type_register(const spoke_actor_type *type)
{
	if (!type || !type->name || !type->name[0] ||
	    strlen(type->name) >= SPOKE_TYPE_NAME_MAX || (type->n_methods && !type->methods))
		return SPOKE_EINVAL;
	if (spoke_actor_type_find(type->name))
		return SPOKE_EEXIST;
	if (n_types == SPOKE_MAX_TYPES)
		return SPOKE_ENOSPC;
	types[n_types++] = type;
	return 0;
}

const spoke_actor_type *spoke_actor_type_find(const char *name)
{
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
