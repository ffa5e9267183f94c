/* The pod sandbox's one process (the "pause" container): it holds the pod's namespaces open for
 * the pod's containers and does nothing else. As PID 1 of a pod that shares its process
 * namespace, it reaps the orphans reparented to it. SIGTERM and SIGINT end it at once.
 * Built static (no loader, no libraries) into the sandbox image that containerd pins. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void)
{
    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigemptyset(&stop.sa_mask);
    sigemptyset(&child.sa_mask);
    if (sigaction(SIGTERM, &stop, NULL) || sigaction(SIGINT, &stop, NULL) ||
        sigaction(SIGCHLD, &child, NULL))
        return 1;
    for (;;) pause();
}
