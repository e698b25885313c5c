/* The floor for echo round trips: a C ping-pong over loopback TCP with
 * TCP_NODELAY, one small message each way, the two ends pinned to the given
 * CPUs. Usage: pingpong CLIENT_CPU SERVER_CPU ROUNDS; prints round trips/s. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int ccpu = atoi(argv[1]), scpu = atoi(argv[2]), rounds = atoi(argv[3]);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 1)) return 1;
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    char buf[64];
    pid_t pid = fork();
    if (pid == 0) {
        pin(scpu);
        int fd = accept(lfd, NULL, NULL);
        nodelay(fd);
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) write(fd, buf, n);
        _exit(0);
    }
    pin(ccpu);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) return 1;
    nodelay(fd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < rounds; i++) {
        if (write(fd, "ping ping ping", 14) != 14) return 1;
        if (read(fd, buf, sizeof buf) <= 0) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    waitpid(pid, NULL, 0);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", rounds / secs);
    return 0;
}
