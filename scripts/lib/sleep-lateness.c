/* How late ppoll(NULL, 0, t) returns, with 1 ns timer slack: scripts/bench-timer.sh. */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/prctl.h>
static long ns(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000L+t.tv_nsec;}
int cmp(const void*a,const void*b){long x=*(long*)a,y=*(long*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  prctl(PR_SET_TIMERSLACK,1);
  long req=atol(argv[1]); int n=atoi(argv[2]); long *late=malloc(n*sizeof(long));
  for(int i=0;i<n;i++){ long t0=ns(); struct timespec ts={0,req}; ppoll(NULL,0,&ts,NULL); late[i]=ns()-t0-req; }
  qsort(late,n,sizeof(long),cmp);
  printf("req %ld ns: lateness p10 %ld p50 %ld p90 %ld p99 %ld max %ld\n",req,late[n/10],late[n/2],late[n*9/10],late[n*99/100],late[n-1]);
}
