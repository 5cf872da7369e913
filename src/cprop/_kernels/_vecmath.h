/* Temporary: stands for its part of _dense.h until the header split lands. */
#include "_dense.h"
