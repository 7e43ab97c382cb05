# S6.1-S6.3 in Python: the same chunks, sequentially, on threads, in processes.
# Run by cpu-bound as: python3 -c <this file> CHUNKS STEPS WORKERS ROUNDS
import multiprocessing
import sys
import threading
import time

MASK = (1 << 64) - 1


def chunk(seed, steps):
    x = (seed + 0x9E3779B97F4A7C15) & MASK
    for _ in range(steps):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
    return x


def share(worker, workers, chunks, steps):
    return sum(chunk(i, steps) for i in range(worker, chunks, workers)) & MASK


def sequential(chunks, steps, workers):
    return share(0, 1, chunks, steps)


def threads(chunks, steps, workers):
    results = [0] * workers

    def run(w):
        results[w] = share(w, workers, chunks, steps)

    started = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in started:
        t.start()
    for t in started:
        t.join()
    return sum(results) & MASK


def processes(chunks, steps, workers):
    # fork: the functions above exist in the children without importing a file.
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(share, [(w, workers, chunks, steps) for w in range(workers)])
    return sum(parts) & MASK


def main():
    chunks, steps, workers, rounds = map(int, sys.argv[1:])
    for way in (sequential, threads, processes):
        best, checksum = None, None
        for _ in range(rounds):
            started = time.perf_counter()
            checksum = way(chunks, steps, workers)
            took = time.perf_counter() - started
            best = took if best is None else min(best, took)
        print(way.__name__, best, f"{checksum:#018x}")


if __name__ == "__main__":
    main()
