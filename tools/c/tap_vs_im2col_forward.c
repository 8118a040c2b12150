// A 3x3 stride-1 convolution over a zero-padded input plane, three ways, single thread, GFLOP/s:
//   shifted-9     one GEMM per kernel tap reading the padded input in place (TapConvolution)
//   im2col+gemm   9 shifted copies per channel into a column block, then one GEMM
//   kn2row3       3 kx-shifted copies, then one GEMM per kernel row
// for blocks of n padded pixels. Args: Cout Cin width. Forward, then backward-weight.
// Build and run: cc -O2 tap_vs_im2col_forward.c -o /tmp/tap -lopenblas && /tmp/tap 16 16 256
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
  float*P=malloc(4L*C*plane+4096),*Wt=malloc(4*9*M*C),*Y=malloc(4L*M*plane),*col=malloc(4L*9*C*4096);
  for(long i=0;i<(long)C*plane;i++)P[i]=rand()/(float)RAND_MAX;
  for(int i=0;i<9*M*C;i++)Wt[i]=rand()/(float)RAND_MAX;
  int Ns[]={128,256,512,1024,2048};
  for(int t=0;t<5;t++){int n=Ns[t]; int K=9*C; int ld=(n+31)/32*32+16;
    double b1=1e9,b2=1e9,b3=1e9;
    for(int r=0;r<10;r++){
      // whole plane sweep: shifted
      double t0=now();
      for(int q0=Wd+3;q0+n<plane-Wd-3;q0+=n){
        for(int tap=0;tap<9;tap++){int ky=tap/3,kx=tap%3; int sh=(ky-1)*(Wd+2)+(kx-1);
          cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,n,C,1,Wt+tap*M*C,C,P+q0+sh,plane,tap?1:0,Y+q0,plane);}
      }
      double d=now()-t0; if(d<b1)b1=d;
      // im2col (memcpy of 9 shifted rows per channel) + one gemm
      t0=now();
      for(int q0=Wd+3;q0+n<plane-Wd-3;q0+=n){
        for(int c=0;c<C;c++)for(int tap=0;tap<9;tap++){int ky=tap/3,kx=tap%3; int sh=(ky-1)*(Wd+2)+(kx-1);
          memcpy(col+(c*9+tap)*ld,P+(long)c*plane+q0+sh,4*n);}
        cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,n,K,1,Wt,K,col,ld,0,Y+q0,plane);
      }
      d=now()-t0; if(d<b2)b2=d;
      // kn2row-3: 3 GEMMs of K=3C over a kx-expanded copy (copy cost included: 3 memcpy per channel per block)
      t0=now();
      for(int q0=Wd+3;q0+n<plane-Wd-3;q0+=n){
        // build Q[c,kx, j] for rows covering ky shifts: need n + 2*(Wd+2) span
        int span=n+2*(Wd+2); int ldq=span+16;
        for(int c=0;c<C;c++)for(int kx=0;kx<3;kx++) memcpy(col+(c*3+kx)*(long)ldq,P+(long)c*plane+q0-(Wd+2)+(kx-1),4*span);
        for(int ky=0;ky<3;ky++) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,n,3*C,1,Wt+ky*M*3*C,3*C,col+ky*(Wd+2),ldq,ky?1:0,Y+q0,plane);
      }
      d=now()-t0; if(d<b3)b3=d;
    }
    double fl=2.0*M*9*C*(double)(plane-2*(Wd+3));
    printf("M=%d C=%d W=%d n=%d: shifted-9 %.1f  im2col+gemm %.1f  kn2row3 %.1f GFLOP/s\n",M,C,Wd,n,fl/b1*1e-9,fl/b2*1e-9,fl/b3*1e-9);
  }
}
