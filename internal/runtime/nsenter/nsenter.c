// Runs before the Go runtime: see nsenter.go. Keep it small and obvious.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_NS 8

static int sync_fd = -1;

static void fail(const char *fmt, ...) {
	char msg[512];
	va_list ap;
	msg[0] = 'E';
	va_start(ap, fmt);
	int n = vsnprintf(msg + 1, sizeof(msg) - 2, fmt, ap);
	va_end(ap);
	if (n < 0) n = 0;
	if (n > (int)sizeof(msg) - 2) n = sizeof(msg) - 2;
	msg[n + 1] = '\0';
	if (sync_fd >= 0 && write(sync_fd, msg, n + 2) < 0) {}
	_exit(1);
}

static void write_all(const void *buf, size_t len) {
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(sync_fd, p, len);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) _exit(1);
		p += n;
		len -= n;
	}
}

static int ns_flag(const char *type) {
	if (!strcmp(type, "user")) return CLONE_NEWUSER;
	if (!strcmp(type, "mnt") || !strcmp(type, "mount")) return CLONE_NEWNS;
	if (!strcmp(type, "pid")) return CLONE_NEWPID;
	if (!strcmp(type, "net") || !strcmp(type, "network")) return CLONE_NEWNET;
	if (!strcmp(type, "ipc")) return CLONE_NEWIPC;
	if (!strcmp(type, "uts")) return CLONE_NEWUTS;
	if (!strcmp(type, "cgroup")) return CLONE_NEWCGROUP;
	if (!strcmp(type, "time")) return CLONE_NEWTIME;
	return 0;
}

void berth_nsenter(void) {
	const char *join = getenv("_BERTH_NSENTER");
	if (join == NULL) return;
	const char *syncs = getenv("_BERTH_NSSYNC");
	const char *unshares = getenv("_BERTH_NSUNSHARE");
	if (syncs == NULL) _exit(1);
	sync_fd = atoi(syncs);

	// Open every namespace first: the paths are the host's, and joining a
	// mount namespace changes what they resolve to.
	int fds[MAX_NS], flags[MAX_NS], n = 0;
	char *list = strdup(join);
	char *save = NULL;
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		if (colon == NULL || n == MAX_NS) fail("bad namespace entry %s", item);
		*colon = '\0';
		int flag = ns_flag(item);
		if (flag == 0) fail("unknown namespace type %s", item);
		int fd = open(colon + 1, O_RDONLY | O_CLOEXEC);
		if (fd < 0) fail("open %s namespace %s: %s", item, colon + 1, strerror(errno));
		fds[n] = fd;
		flags[n] = flag;
		n++;
	}
	// User namespace first: it grants the rights to join the others.
	for (int i = 0; i < n; i++) {
		if (flags[i] != CLONE_NEWUSER) continue;
		if (setns(fds[i], CLONE_NEWUSER) < 0) fail("join user namespace: %s", strerror(errno));
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail("become root in joined user namespace: %s", strerror(errno));
		close(fds[i]);
	}
	for (int i = 0; i < n; i++) {
		if (flags[i] == CLONE_NEWUSER) continue;
		if (setns(fds[i], flags[i]) < 0) fail("join namespace %d: %s", flags[i], strerror(errno));
		close(fds[i]);
	}
	free(list);

	int unshare_flags = unshares ? atoi(unshares) : 0;
	if (unshare_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0) fail("unshare user namespace: %s", strerror(errno));
		// Only the parent, outside, may write our uid and gid maps.
		char c = 'U';
		write_all(&c, 1);
		if (read(sync_fd, &c, 1) != 1 || c != 'u') _exit(1);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail("become root in user namespace: %s", strerror(errno));
	}
	int rest = unshare_flags & ~CLONE_NEWUSER;
	if (rest && unshare(rest) < 0) fail("unshare namespaces %#x: %s", rest, strerror(errno));

	int pid_changed = (unshare_flags & CLONE_NEWPID) != 0;
	for (int i = 0; i < n; i++)
		if (flags[i] == CLONE_NEWPID) pid_changed = 1;

	pid_t self = getpid();
	if (pid_changed) {
		// A PID namespace applies to children only: the child goes on into Go.
		pid_t child = fork();
		if (child < 0) fail("fork into pid namespace: %s", strerror(errno));
		if (child > 0) {
			char msg[5];
			msg[0] = 'P';
			memcpy(msg + 1, &child, 4);
			write_all(msg, 5);
			_exit(0);
		}
		// A session of its own, as the parent gave the intermediate one:
		// a terminal can only become the controlling tty of a leader.
		setsid();
		return;
	}
	char msg[5];
	msg[0] = 'P';
	memcpy(msg + 1, &self, 4);
	write_all(msg, 5);
}
