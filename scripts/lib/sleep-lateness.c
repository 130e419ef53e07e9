/* How late ppoll(NULL, 0, t) returns, with 1 ns timer slack, and the CPU time
 * each sleep and wake-up costs the sleeper (getrusage: user + system):
 * scripts/bench-timer.sh. */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
static long ns(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000L+t.tv_nsec;}
static long cpu_ns(void){struct rusage r;getrusage(RUSAGE_SELF,&r);
  return (r.ru_utime.tv_sec+r.ru_stime.tv_sec)*1000000000L+(r.ru_utime.tv_usec+r.ru_stime.tv_usec)*1000L;}
int cmp(const void*a,const void*b){long x=*(long*)a,y=*(long*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  prctl(PR_SET_TIMERSLACK,1);
  long req=atol(argv[1]); int n=atoi(argv[2]); long *late=malloc(n*sizeof(long));
  long c0=cpu_ns();
  for(int i=0;i<n;i++){ long t0=ns(); struct timespec ts={0,req}; ppoll(NULL,0,&ts,NULL); late[i]=ns()-t0-req; }
  long c1=cpu_ns();
  /* The same number of ppoll calls that do not sleep (zero timeout). */
  struct timespec zero={0,0};
  for(int i=0;i<n;i++) ppoll(NULL,0,&zero,NULL);
  long c2=cpu_ns();
  qsort(late,n,sizeof(long),cmp);
  printf("req %ld ns: lateness p10 %ld p50 %ld p90 %ld p99 %ld max %ld; CPU per sleep %.1f us (per non-sleeping call %.2f us)\n",
         req,late[n/10],late[n/2],late[n*9/10],late[n*99/100],late[n-1],(c1-c0)/1e3/n,(c2-c1)/1e3/n);
}
