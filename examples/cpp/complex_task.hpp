/* complex_task.hpp - the ComplexTask of the original Spoke's README, and
 * its spoke::Serializer: a user's own type, packed the way the C example
 * packs its complex_task (examples/complex_task.c: a nested record of an
 * i32, a string and an f32 array), so that either side may be C or C++. */
#ifndef EXAMPLES_CPP_COMPLEX_TASK_HPP
#define EXAMPLES_CPP_COMPLEX_TASK_HPP

#include <string>
#include <vector>

#include <spoke/spoke.hpp>

struct ComplexTask {
	int id;
	std::string name;
	std::vector<float> values;
};

template <> struct spoke::Serializer<ComplexTask> {
	static void PackTo(spoke::MessageWriter &out, const ComplexTask &t)
	{
		size_t mark = out.beginRecord();
		out << static_cast<int32_t>(t.id) << t.name << t.values;
		out.endRecord(mark);
	}
	static void UnpackFrom(spoke::MessageView &in, ComplexTask &t)
	{
		spoke::MessageView rec = in.readRecord();
		t.id = rec.read<int32_t>();
		rec >> t.name >> t.values;
	}
};

#endif
