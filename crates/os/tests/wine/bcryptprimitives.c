/*
 * A stand-in for bcryptprimitives.dll, which Wine before 9.0 (Debian 12 has
 * 8.0) lacks. Rust's std (since 1.78) imports ProcessPrng from it for every
 * Windows executable, so without it no test binary starts under Wine
 * ("Library bcryptprimitives.dll ... not found", exit status 53).
 *
 * It only serves Wine test runs; it never ships. Build and install it once
 * per Wine prefix:
 *
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *       crates/os/tests/wine/bcryptprimitives.c -ladvapi32
 *   cp bcryptprimitives.dll "${WINEPREFIX:-$HOME/.wine}/drive_c/windows/system32/"
 *
 * ProcessPrng is answered with RtlGenRandom (advapi32's SystemFunction036),
 * which Wine implements on the host's random source.
 */
#include <windows.h>

#define RtlGenRandom SystemFunction036
BOOLEAN WINAPI RtlGenRandom(PVOID buffer, ULONG length);

/* Like the real one, it never fails: it reports an error by not returning. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!RtlGenRandom(data, chunk)) {
            ExitProcess(ERROR_INTERNAL_ERROR);
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
