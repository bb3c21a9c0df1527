/* hello.h - method ids of the "Hello" example actor. */
#ifndef EXAMPLES_HELLO_H
#define EXAMPLES_HELLO_H

#define HELLO_METHOD_HELLO 1
#define HELLO_METHOD_ECHO 2
#define HELLO_METHOD_GPUS 3

#endif
