// The libzmq C API as Swift sees it. Everything Swift can import directly comes from <zmq.h>;
// nothing here wraps behaviour.
#ifndef CZEROMQ_SHIM_H
#define CZEROMQ_SHIM_H
#include <zmq.h>
#endif
