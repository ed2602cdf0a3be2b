/*
 * The C libzmq baseline of issue 5: the same topology and frames as swift-execnet, with nothing
 * but blocking libzmq calls in tight loops.
 *
 *   baseline direct [options]   ROUTER in this process over ipc, worker DEALER in a child process
 *   baseline relay  [options]   DEALER here -> relay broker process (ROUTER/ROUTER) over TCP
 *                               loopback -> worker DEALER in a child process
 *   baseline worker ENDPOINT ROUTING_ID     (internal: the worker)
 *   baseline broker                         (internal: the relay broker; prints its endpoints)
 *
 * Frames (after the ROUTER's routing id): a 4-byte channel id, a 1-byte type, a payload in
 * execnet's serializer form, exactly as swift-execnet sends them: HELLO=1, EXEC=2, DATA=3,
 * TERMINATE=8. A small int is 'F' + 4 bytes big-endian + 'Q'; a byte string is
 * 'A' + 4-byte length + bytes + 'Q'. The EXEC payload here is plain text naming the task
 * ("hello", "echo", "oneway"), since the baseline has no task registry.
 *
 * Options: --figure LIST (startup,group8,rtt,oneway,taskserver,taskserver-map,idle-rss; default all that apply;
 *                        also the curve sizes: one-way and round trip per item size, direct and relay)
 *          --startup-samples N --samples N --rtt-count N --small-count N --kib-count N --mib-count N
 *          --tasks N --sizes LIST --curve-bytes N --curve-max-items N
 * taskserver (direct only) is the seed's pattern without Group or protocol: 4 workers, one task in
 * flight per worker, each reply answered with the next task; start-up and stop included.
 * taskserver-map is the same with 4 tasks in flight per worker (pipelined, as group.map runs it).
 * Output: one JSON line per figure, {"impl": "c_direct", "figure": "rtt_us_median", "value": 40.1}.
 *
 * Build: cc -O2 -o baseline baseline.c $(pkg-config --cflags --libs libzmq)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

enum { HELLO = 1, EXEC = 2, DATA = 3, TERMINATE = 8 };

extern char **environ;

static const char *impl = "c_direct";
static char self_path[4096];

static void die(const char *what) {
    fprintf(stderr, "baseline: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emit(const char *figure, double value) {
    printf("{\"impl\": \"%s\", \"figure\": \"%s\", \"value\": %.3f}\n", impl, figure, value);
    fflush(stdout);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank of sorted values, as the Swift and Python benchmarks compute it. */
static double percentile(double *sorted, int count, double fraction) {
    double exact = fraction * count;
    int rank = (int)exact;
    if ((double)rank < exact) rank++;
    rank -= 1;
    if (rank < 0) rank = 0;
    if (rank > count - 1) rank = count - 1;
    return sorted[rank];
}

static double median(double *values, int count) {
    qsort(values, count, sizeof(double), compare_doubles);
    return percentile(values, count, 0.5);
}

static void memory_mib(pid_t pid, double *rss, double *hwm) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    *rss = *hwm = 0;
    if (!file) return;
    while (fgets(line, sizeof line, file)) {
        if (strncmp(line, "VmRSS:", 6) == 0) *rss = atof(line + 6) / 1024;
        if (strncmp(line, "VmHWM:", 6) == 0) *hwm = atof(line + 6) / 1024;
    }
    fclose(file);
}

/* ---- frames ---- */

static void send_frame(void *socket, const void *data, size_t size, int more) {
    if (zmq_send(socket, data, size, more ? ZMQ_SNDMORE : 0) < 0) die("zmq_send");
}

/* Sends channel, type and payload (preceded by `routing` if given). */
static void send_message(void *socket, const char *routing, uint32_t channel, uint8_t type,
                         const void *payload, size_t size) {
    unsigned char id[4] = {channel >> 24, channel >> 16, channel >> 8, channel};
    if (routing) send_frame(socket, routing, strlen(routing), 1);
    send_frame(socket, id, 4, 1);
    send_frame(socket, &type, 1, 1);
    send_frame(socket, payload, size, 0);
}

/* Receives one whole message into `parts` (up to 4 frames); returns the frame count. */
static int receive_message(void *socket, zmq_msg_t *parts, int capacity) {
    int count = 0;
    for (;;) {
        zmq_msg_t *part = &parts[count < capacity ? count : capacity - 1];
        if (zmq_msg_recv(part, socket, 0) < 0) die("zmq_msg_recv");
        count++;
        if (!zmq_msg_more(part)) return count;
    }
}

static size_t small_int(unsigned char *buffer, uint32_t value) {
    buffer[0] = 'F';
    buffer[1] = value >> 24; buffer[2] = value >> 16; buffer[3] = value >> 8; buffer[4] = value;
    buffer[5] = 'Q';
    return 6;
}

static unsigned char *byte_string(size_t size, size_t *total) {
    unsigned char *buffer = malloc(size + 6);
    buffer[0] = 'A';
    buffer[1] = size >> 24; buffer[2] = size >> 16; buffer[3] = size >> 8; buffer[4] = size;
    memset(buffer + 5, 'a', size);
    buffer[size + 5] = 'Q';
    *total = size + 6;
    return buffer;
}

/* ---- the worker ---- */

static int worker_main(const char *endpoint, const char *routing) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    void *context = zmq_ctx_new();
    void *dealer = zmq_socket(context, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, routing, strlen(routing));
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(dealer, endpoint) < 0) die("zmq_connect");
    unsigned char payload[64];
    send_message(dealer, NULL, 0, HELLO, payload, small_int(payload, (uint32_t)getpid()));

    zmq_msg_t parts[4];
    for (int i = 0; i < 4; i++) zmq_msg_init(&parts[i]);
    int echo = 0, times10 = 0;
    for (;;) {
        int count = receive_message(dealer, parts, 4);
        if (count != 3) continue;
        uint32_t channel = 0;
        memcpy(&channel, zmq_msg_data(&parts[0]), 4);
        channel = __builtin_bswap32(channel);
        uint8_t type = *(uint8_t *)zmq_msg_data(&parts[1]);
        if (type == TERMINATE) break;
        if (type == DATA && times10 && zmq_msg_size(&parts[2]) == 6) {
            /* 'F' + 4 bytes big-endian + 'Q' in, the same form of x*10 out. */
            const unsigned char *item = zmq_msg_data(&parts[2]);
            uint32_t value = (uint32_t)item[1] << 24 | (uint32_t)item[2] << 16 | (uint32_t)item[3] << 8 | item[4];
            send_message(dealer, NULL, channel, DATA, payload, small_int(payload, value * 10));
            continue;
        }
        if (type == DATA && echo) {
            /* Send the same three frames back (copies, like the Swift and Python echo). */
            send_message(dealer, NULL, channel, DATA, zmq_msg_data(&parts[2]), zmq_msg_size(&parts[2]));
            continue;
        }
        if (type != EXEC) continue;
        const char *task = zmq_msg_data(&parts[2]);
        size_t task_size = zmq_msg_size(&parts[2]);
        if (task_size == 5 && memcmp(task, "hello", 5) == 0) {
            send_message(dealer, NULL, channel, DATA, payload, small_int(payload, 1));
        } else if (task_size == 4 && memcmp(task, "echo", 4) == 0) {
            echo = 1;
        } else if (task_size == 6 && memcmp(task, "times10", 6) == 0) {
            times10 = 1;
        } else if (task_size > 7 && memcmp(task, "oneway ", 7) == 0) {
            char text[64] = {0};
            memcpy(text, task, task_size < 63 ? task_size : 63);
            long messages = 0, size = 0;
            sscanf(text + 7, "%ld %ld", &messages, &size);
            receive_message(dealer, parts, 4); /* go */
            if (size == 0) {
                for (long i = 0; i < messages; i++)
                    send_message(dealer, NULL, channel, DATA, payload, small_int(payload, (uint32_t)i));
            } else {
                size_t total;
                unsigned char *item = byte_string((size_t)size, &total);
                for (long i = 0; i < messages; i++) send_message(dealer, NULL, channel, DATA, item, total);
                free(item);
            }
        }
    }
    zmq_close(dealer);
    zmq_ctx_term(context);
    return 0;
}

/* ---- the relay broker ---- */

static int broker_main(void) {
    void *context = zmq_ctx_new();
    void *front = zmq_socket(context, ZMQ_ROUTER);
    void *back = zmq_socket(context, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(front, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(back, ZMQ_LINGER, &zero, sizeof zero);
    /* A ROUTER drops what meets a full pipe; mandatory routing makes the send block instead. */
    int one = 1;
    zmq_setsockopt(front, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(back, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (zmq_bind(front, "tcp://127.0.0.1:*") < 0 || zmq_bind(back, "tcp://127.0.0.1:*") < 0) die("zmq_bind");
    char front_endpoint[256], back_endpoint[256];
    size_t length = sizeof front_endpoint;
    zmq_getsockopt(front, ZMQ_LAST_ENDPOINT, front_endpoint, &length);
    length = sizeof back_endpoint;
    zmq_getsockopt(back, ZMQ_LAST_ENDPOINT, back_endpoint, &length);
    printf("%s %s\n", front_endpoint, back_endpoint);
    fflush(stdout);
    prctl(PR_SET_PDEATHSIG, SIGKILL);

    /* One client and one worker: remember their routing ids and swap envelopes. */
    zmq_msg_t client_id, worker_id, part;
    zmq_msg_init(&client_id);
    zmq_msg_init(&worker_id);
    zmq_msg_init(&part);
    int have_client = 0, have_worker = 0;
    zmq_pollitem_t items[2] = {{front, 0, ZMQ_POLLIN, 0}, {back, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0) die("zmq_poll");
        for (int side = 0; side < 2; side++) {
            if (!(items[side].revents & ZMQ_POLLIN)) continue;
            void *from = side == 0 ? front : back;
            void *to = side == 0 ? back : front;
            zmq_msg_t *sender = side == 0 ? &client_id : &worker_id;
            zmq_msg_t *receiver = side == 0 ? &worker_id : &client_id;
            int *known = side == 0 ? &have_client : &have_worker;
            int *peer_known = side == 0 ? &have_worker : &have_client;
            for (;;) {
                if (zmq_msg_recv(&part, from, ZMQ_DONTWAIT) < 0) {
                    if (zmq_errno() == EAGAIN) break;
                    die("broker recv");
                }
                zmq_msg_move(sender, &part); /* the routing id of whoever sent this */
                *known = 1;
                /* Until the worker is there, a client message only registers the client: ack it. */
                int forward = *peer_known;
                if (!forward && side == 0) {
                    zmq_msg_t copy;
                    zmq_msg_init(&copy);
                    zmq_msg_copy(&copy, sender);
                    if (zmq_msg_send(&copy, front, ZMQ_SNDMORE) < 0 || zmq_send(front, "", 0, 0) < 0)
                        die("broker ack");
                }
                if (forward) {
                    zmq_msg_t copy;
                    zmq_msg_init(&copy);
                    zmq_msg_copy(&copy, receiver);
                    if (zmq_msg_send(&copy, to, ZMQ_SNDMORE) < 0) die("broker send id");
                }
                int more = 1;
                while (more) {
                    if (zmq_msg_recv(&part, from, 0) < 0) die("broker recv part");
                    more = zmq_msg_more(&part);
                    if (forward) {
                        if (zmq_msg_send(&part, to, more ? ZMQ_SNDMORE : 0) < 0) die("broker send");
                    }
                }
            }
        }
    }
    return 0;
}

/* ---- the client side ---- */

static pid_t spawn_self(char *const arguments[], int stdout_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    pid_t pid;
    int rc = posix_spawn(&pid, self_path, &actions, NULL, arguments, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) { fprintf(stderr, "baseline: posix_spawn: %s\n", strerror(rc)); exit(1); }
    return pid;
}

static pid_t spawn_worker(const char *endpoint, const char *routing) {
    char *arguments[] = {self_path, "worker", (char *)endpoint, (char *)routing, NULL};
    return spawn_self(arguments, -1);
}

/* A connection to workers: a ROUTER bound over ipc (direct) or a DEALER at the broker (relay). */
typedef struct {
    void *context;
    void *socket;
    char endpoint[256];       /* where workers connect */
    pid_t broker;
    int relay;
} Client;

static int sample_number = 0;

static void client_open(Client *client, int relay) {
    memset(client, 0, sizeof *client);
    client->relay = relay;
    client->context = zmq_ctx_new();
    int zero = 0;
    if (!relay) {
        client->socket = zmq_socket(client->context, ZMQ_ROUTER);
        zmq_setsockopt(client->socket, ZMQ_LINGER, &zero, sizeof zero);
        snprintf(client->endpoint, sizeof client->endpoint, "ipc:///tmp/execnet-c-baseline-%d-%d",
                 (int)getpid(), sample_number++);
        if (zmq_bind(client->socket, client->endpoint) < 0) die("zmq_bind");
        return;
    }
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(1); }
    char *arguments[] = {self_path, "broker", NULL};
    client->broker = spawn_self(arguments, fds[1]);
    close(fds[1]);
    char line[600] = {0}, front[256] = {0};
    FILE *from_broker = fdopen(fds[0], "r");
    if (!fgets(line, sizeof line, from_broker)) { fprintf(stderr, "baseline: no broker endpoints\n"); exit(1); }
    fclose(from_broker);
    sscanf(line, "%255s %255s", front, client->endpoint);
    client->socket = zmq_socket(client->context, ZMQ_DEALER);
    zmq_setsockopt(client->socket, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(client->socket, front) < 0) die("zmq_connect");
    send_frame(client->socket, "", 0, 0); /* register with the broker, and wait for its ack */
    zmq_msg_t ack;
    zmq_msg_init(&ack);
    if (zmq_msg_recv(&ack, client->socket, 0) < 0) die("broker ack");
    zmq_msg_close(&ack);
}

static void client_close(Client *client) {
    zmq_close(client->socket);
    zmq_ctx_term(client->context);
    if (client->broker) {
        kill(client->broker, SIGKILL);
        waitpid(client->broker, NULL, 0);
    }
    if (!client->relay) unlink(client->endpoint + strlen("ipc://"));
}

static void client_send(Client *client, const char *routing, uint32_t channel, uint8_t type,
                        const void *payload, size_t size) {
    send_message(client->socket, client->relay ? NULL : routing, channel, type, payload, size);
}

/* Receives one message; returns the index of its type frame (1 direct, 0 relay... see below). */
static void client_receive(Client *client, zmq_msg_t *parts) {
    receive_message(client->socket, parts, 4);
}

static void client_receive_hello(Client *client, zmq_msg_t *parts) {
    client_receive(client, parts);
}

static void stop_worker(Client *client, const char *routing, pid_t pid) {
    client_send(client, routing, 0, TERMINATE, "", 0);
    waitpid(pid, NULL, 0);
}

typedef struct {
    const char *figures;
    int startup_samples, samples;
    long rtt_count, small_count, kib_count, mib_count, tasks;
    const char *sizes;        /* the sizes curve (issue 16): item sizes in bytes, comma-separated */
    long curve_bytes, curve_max_items;
} Options;

static int wants(const Options *options, const char *figure) {
    if (strcmp(options->figures, "all") == 0) return 1;
    const char *found = strstr(options->figures, figure);
    size_t length = strlen(figure);
    while (found) {
        int starts = found == options->figures || found[-1] == ',';
        int ends = found[length] == 0 || found[length] == ',';
        if (starts && ends) return 1;
        found = strstr(found + 1, figure);
    }
    return 0;
}

/* Start-up: a new context and ROUTER, `workers` workers, one "hello" task each, every reply. */
static double startup_sample(int workers) {
    double started = now_seconds();
    Client client;
    client_open(&client, 0);
    pid_t pids[16];
    char routing[16][32];
    zmq_msg_t parts[4];
    for (int i = 0; i < 4; i++) zmq_msg_init(&parts[i]);
    for (int w = 0; w < workers; w++) {
        snprintf(routing[w], sizeof routing[w], "w%d", w);
        pids[w] = spawn_worker(client.endpoint, routing[w]);
    }
    for (int w = 0; w < workers; w++) client_receive_hello(&client, parts);
    for (int w = 0; w < workers; w++) client_send(&client, routing[w], 1, EXEC, "hello", 5);
    for (int w = 0; w < workers; w++) client_receive(&client, parts);
    double elapsed = now_seconds() - started;
    for (int w = 0; w < workers; w++) stop_worker(&client, routing[w], pids[w]);
    for (int i = 0; i < 4; i++) zmq_msg_close(&parts[i]);
    client_close(&client);
    return elapsed * 1e3;
}

/* The taskserver: 4 workers started, `tasks` tasks pulled by whichever worker answered, with
 * `window` tasks in flight per worker (1: the seed's pattern; 4: pipelined as group.map does it),
 * then every worker stopped; tasks per second over all of it. */
static double taskserver_rate(long tasks, int window) {
    enum { WORKERS = 4 };
    double started = now_seconds();
    Client client;
    client_open(&client, 0);
    pid_t pids[WORKERS];
    char routing[WORKERS][32];
    zmq_msg_t parts[4];
    for (int i = 0; i < 4; i++) zmq_msg_init(&parts[i]);
    for (int w = 0; w < WORKERS; w++) {
        snprintf(routing[w], sizeof routing[w], "t%d", w);
        pids[w] = spawn_worker(client.endpoint, routing[w]);
    }
    for (int w = 0; w < WORKERS; w++) client_receive_hello(&client, parts);
    unsigned char payload[16];
    long sent = 0, results = 0;
    for (int w = 0; w < WORKERS; w++) {
        client_send(&client, routing[w], 1, EXEC, "times10", 6);
        for (int k = 0; k < window && sent < tasks; k++)
            client_send(&client, routing[w], 1, DATA, payload, small_int(payload, (uint32_t)sent++));
    }
    while (results < tasks) {
        client_receive(&client, parts);
        results++;
        if (sent < tasks) {
            /* parts[0] is the routing id of the worker that answered. */
            char who[32] = {0};
            size_t size = zmq_msg_size(&parts[0]);
            memcpy(who, zmq_msg_data(&parts[0]), size < 31 ? size : 31);
            client_send(&client, who, 1, DATA, payload, small_int(payload, (uint32_t)sent++));
        }
    }
    for (int w = 0; w < WORKERS; w++) stop_worker(&client, routing[w], pids[w]);
    for (int i = 0; i < 4; i++) zmq_msg_close(&parts[i]);
    client_close(&client);
    return tasks / (now_seconds() - started);
}

static void emit_point(const char *figure, long x, double value) {
    printf("{\"impl\": \"%s\", \"figure\": \"%s\", \"x\": %ld, \"value\": %.3f}\n", impl, figure, x, value);
    fflush(stdout);
}

/* The sizes curve: for each size, one-way throughput of byte strings of that size (as the oneway
 * figure), then for each size the round trip of one such byte string through the echo worker. */
static void sizes_curve(const Options *options, int relay) {
    long sizes[64];
    int count = 0;
    for (const char *p = options->sizes; *p && count < 64;) {
        sizes[count++] = strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
    }
    Client client;
    client_open(&client, relay);
    const char *routing = "s0";
    pid_t pid = spawn_worker(client.endpoint, routing);
    zmq_msg_t parts[4];
    for (int i = 0; i < 4; i++) zmq_msg_init(&parts[i]);
    client_receive_hello(&client, parts);
    for (int s = 0; s < count; s++) {
        long size = sizes[s] > 0 ? sizes[s] : 1;
        long items = options->curve_bytes / size;
        if (items > options->curve_max_items) items = options->curve_max_items;
        if (items < 4) items = 4;
        char task[64];
        int length = snprintf(task, sizeof task, "oneway %ld %ld", items, size);
        uint32_t channel = 101 + 2 * (uint32_t)s;
        client_send(&client, routing, channel, EXEC, task, (size_t)length);
        double started = now_seconds();
        client_send(&client, routing, channel, DATA, "go", 2);
        for (long i = 0; i < items; i++) client_receive(&client, parts);
        emit_point("curve_size_oneway_mb_per_s", size, items * (double)size / 1e6 / (now_seconds() - started));
    }
    client_send(&client, routing, 999, EXEC, "echo", 4);
    for (int s = 0; s < count; s++) {
        long size = sizes[s] > 0 ? sizes[s] : 1;
        long trips = options->curve_bytes / 8 / size;
        if (trips > options->rtt_count) trips = options->rtt_count;
        if (trips < 3) trips = 3;
        size_t total;
        unsigned char *item = byte_string((size_t)size, &total);
        client_send(&client, routing, 999, DATA, item, total);
        client_receive(&client, parts);
        double *times = malloc(sizeof(double) * (size_t)trips);
        for (long i = 0; i < trips; i++) {
            double started = now_seconds();
            client_send(&client, routing, 999, DATA, item, total);
            client_receive(&client, parts);
            times[i] = (now_seconds() - started) * 1e6;
        }
        emit_point("curve_size_rtt_us", size, median(times, (int)trips));
        free(times);
        free(item);
    }
    stop_worker(&client, routing, pid);
    for (int i = 0; i < 4; i++) zmq_msg_close(&parts[i]);
    client_close(&client);
}

static void run_figures(const Options *options, int relay) {
    if (wants(options, "sizes")) sizes_curve(options, relay);
    if (!relay && wants(options, "taskserver")) emit("taskserver_tasks_per_s", taskserver_rate(options->tasks, 1));
    if (!relay && wants(options, "taskserver-map"))
        emit("taskserver_map_tasks_per_s", taskserver_rate(options->tasks, 4));
    if (!relay && wants(options, "startup")) {
        double times[256];
        int n = options->startup_samples < 256 ? options->startup_samples : 256;
        for (int s = 0; s < n; s++) times[s] = startup_sample(1);
        emit("startup_ms", median(times, n));
    }
    if (!relay && wants(options, "group8")) {
        double times[256];
        int n = options->samples < 256 ? options->samples : 256;
        for (int s = 0; s < n; s++) times[s] = startup_sample(8);
        emit("group8_startup_ms", median(times, n));
    }
    int need_worker = wants(options, "rtt") || wants(options, "oneway") || (!relay && wants(options, "idle-rss"));
    if (!need_worker) return;

    Client client;
    client_open(&client, relay);
    const char *routing = "w0";
    pid_t pid = spawn_worker(client.endpoint, routing);
    zmq_msg_t parts[4];
    for (int i = 0; i < 4; i++) zmq_msg_init(&parts[i]);
    client_receive_hello(&client, parts);
    unsigned char payload[16];

    if (!relay && wants(options, "idle-rss")) {
        client_send(&client, routing, 1, EXEC, "hello", 5);
        client_receive(&client, parts);
        usleep(200000);
        double rss, hwm;
        memory_mib(pid, &rss, &hwm);
        emit("idle_worker_rss_mib", rss);
        emit("idle_worker_hwm_mib", hwm);
    }
    if (wants(options, "rtt")) {
        client_send(&client, routing, 3, EXEC, "echo", 4);
        long count = options->rtt_count;
        double *times = malloc(sizeof(double) * (size_t)count);
        long warmup = count < 1000 ? count : 1000;
        for (long i = 0; i < warmup; i++) {
            client_send(&client, routing, 3, DATA, payload, small_int(payload, (uint32_t)i));
            client_receive(&client, parts);
        }
        for (long i = 0; i < count; i++) {
            double started = now_seconds();
            client_send(&client, routing, 3, DATA, payload, small_int(payload, (uint32_t)i));
            client_receive(&client, parts);
            times[i] = (now_seconds() - started) * 1e6;
        }
        qsort(times, (size_t)count, sizeof(double), compare_doubles);
        emit("rtt_us_median", percentile(times, (int)count, 0.5));
        emit("rtt_us_p99", percentile(times, (int)count, 0.99));
        free(times);
        /* The echo worker stays in echo mode; the one-way figures use a fresh worker. */
        stop_worker(&client, routing, pid);
        if (wants(options, "oneway")) {
            routing = "w1";
            pid = spawn_worker(client.endpoint, routing);
            client_receive_hello(&client, parts);
        }
    }
    if (wants(options, "oneway")) {
        struct { const char *figure; long count; long size; } runs[3] = {
            {"oneway_small_msgs_per_s", options->small_count, 0},
            {"oneway_1kib_msgs_per_s", options->kib_count, 1024},
            {"oneway_1mib_mb_per_s", options->mib_count, 1 << 20},
        };
        for (int r = 0; r < 3; r++) {
            char task[64];
            int length = snprintf(task, sizeof task, "oneway %ld %ld", runs[r].count, runs[r].size);
            client_send(&client, routing, 5 + 2 * r, EXEC, task, (size_t)length);
            double started = now_seconds();
            client_send(&client, routing, 5 + 2 * r, DATA, "go", 2);
            for (long i = 0; i < runs[r].count; i++) client_receive(&client, parts);
            double elapsed = now_seconds() - started;
            if (runs[r].size == 0 || runs[r].size == 1024)
                emit(runs[r].figure, runs[r].count / elapsed);
            else
                emit(runs[r].figure, runs[r].count * (double)runs[r].size / 1e6 / elapsed);
        }
        double rss, hwm;
        memory_mib(getpid(), &rss, &hwm);
        emit("client_peak_rss_mib", hwm);
    }
    if (kill(pid, 0) == 0) stop_worker(&client, routing, pid);
    for (int i = 0; i < 4; i++) zmq_msg_close(&parts[i]);
    client_close(&client);
}

int main(int argc, char **argv) {
    ssize_t length = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (length <= 0) { perror("readlink"); return 1; }
    self_path[length] = 0;
    if (argc >= 4 && strcmp(argv[1], "worker") == 0) return worker_main(argv[2], argv[3]);
    if (argc >= 2 && strcmp(argv[1], "broker") == 0) return broker_main();
    if (argc < 2 || (strcmp(argv[1], "direct") != 0 && strcmp(argv[1], "relay") != 0)) {
        fprintf(stderr, "usage: baseline direct|relay [--figure LIST] [--startup-samples N] [--samples N]\n"
                        "       [--rtt-count N] [--small-count N] [--kib-count N] [--mib-count N] [--tasks N]\n");
        return 2;
    }
    int relay = strcmp(argv[1], "relay") == 0;
    impl = relay ? "c_relay" : "c_direct";
    Options options = {"all", 10, 5, 20000, 200000, 200000, 200, 20000,
                       "8,32,128,512,2048,8192,32768,131072,524288,2097152,8388608,16777216", 64L << 20, 100000};
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *name = argv[i], *value = argv[i + 1];
        if (strcmp(name, "--figure") == 0) options.figures = value;
        else if (strcmp(name, "--startup-samples") == 0) options.startup_samples = atoi(value);
        else if (strcmp(name, "--samples") == 0) options.samples = atoi(value);
        else if (strcmp(name, "--rtt-count") == 0) options.rtt_count = atol(value);
        else if (strcmp(name, "--small-count") == 0) options.small_count = atol(value);
        else if (strcmp(name, "--kib-count") == 0) options.kib_count = atol(value);
        else if (strcmp(name, "--mib-count") == 0) options.mib_count = atol(value);
        else if (strcmp(name, "--tasks") == 0) options.tasks = atol(value);
        else if (strcmp(name, "--sizes") == 0) options.sizes = value;
        else if (strcmp(name, "--curve-bytes") == 0) options.curve_bytes = atol(value);
        else if (strcmp(name, "--curve-max-items") == 0) options.curve_max_items = atol(value);
        else { fprintf(stderr, "baseline: unknown option %s\n", name); return 2; }
    }
    if (options.startup_samples < 1 || options.samples < 1 || options.rtt_count < 1) {
        fprintf(stderr, "baseline: counts must be positive\n");
        return 2;
    }
    run_figures(&options, relay);
    return 0;
}
