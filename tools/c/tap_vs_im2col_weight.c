// Backward-weight of a 3x3 stride-1 convolution: one GEMM per tap over the padded input
// (dW_tap^T += P_shift . dY^T) against im2col + one GEMM (dW^T += col . dY^T), single thread.
// Args: Cout Cin width. Build: cc -O2 tap_vs_im2col_weight.c -o /tmp/tapw -lopenblas
// (docs/PERFORMANCE.md, "Tap GEMMs").
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  int M=atoi(argv[1]),C=atoi(argv[2]),Wd=atoi(argv[3]);
  int plane=(Wd+2)*(Wd+2);
  float*P=malloc(4L*C*plane+4096),*dW=malloc(4*9*M*C),*dY=malloc(4L*M*plane),*col=malloc(4L*9*C*4096),*dYT=malloc(4L*M*4096);
  for(long i=0;i<(long)C*plane;i++)P[i]=rand()/(float)RAND_MAX;
  for(long i=0;i<(long)M*plane;i++)dY[i]=rand()/(float)RAND_MAX;
  int Ns[]={128,256,512,1024,2048};
  for(int t=0;t<5;t++){int n=Ns[t]; int K=9*C; int ld=(n+31)/32*32+16;
    double b1=1e9,b2=1e9;
    for(int r=0;r<10;r++){
      double t0=now();
      for(int q0=Wd+3;q0+n<plane-Wd-3;q0+=n){
        for(int i=0;i<n;i++)for(int m=0;m<M;m++)dYT[i*M+m]=dY[(long)m*plane+q0+i];
        for(int tap=0;tap<9;tap++){int ky=tap/3,kx=tap%3; int sh=(ky-1)*(Wd+2)+(kx-1);
          cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,C,M,n,1,P+q0+sh,plane,dYT,M,1,dW+tap*M*C,M);}
      }
      double d=now()-t0; if(d<b1)b1=d;
      t0=now();
      for(int q0=Wd+3;q0+n<plane-Wd-3;q0+=n){
        for(int c=0;c<C;c++)for(int tap=0;tap<9;tap++){int ky=tap/3,kx=tap%3; int sh=(ky-1)*(Wd+2)+(kx-1);
          memcpy(col+(c*9+tap)*ld,P+(long)c*plane+q0+sh,4*n);}
        for(int i=0;i<n;i++)for(int m=0;m<M;m++)dYT[i*M+m]=dY[(long)m*plane+q0+i];
        cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,K,M,n,1,col,ld,dYT,M,1,dW,M);
      }
      d=now()-t0; if(d<b2)b2=d;
    }
    double fl=2.0*M*9*C*(double)(plane-2*(Wd+3));
    printf("bwdW M=%d C=%d W=%d n=%d: shifted-9 %.1f  im2col+gemm(f3) %.1f GFLOP/s\n",M,C,Wd,n,fl/b1*1e-9,fl/b2*1e-9);
  }
}
