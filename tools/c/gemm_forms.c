// Single-thread GFLOP/s of the convolution GEMM forms on OpenBLAS, at the widest block within its
// small-matrix limit (M*N*K <= 100^3: kernels that read operands in place) and at a 4 MiB block.
// Forms, for Y[M, n] = W[M, K] col[K, n]:
//   f0 forward          Y = W . col                  (NN)
//   f1 backward-data    dcol = W^T . dY              (TN)
//   f2 backward-weight  dW += dY . col^T             (NT)
//   f3 backward-weight  dW^T += col . dY^T           (NN, dY transposed first)
// Build and run: cc -O2 gemm_forms.c -o /tmp/gemm_forms -lopenblas && /tmp/gemm_forms
// (docs/PERFORMANCE.md, "Thin GEMMs"). Operands stay in cache between repetitions.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
float*W,*X,*Y,*D;
double run(int M,int K,int N,int form,int ld){
  double best=1e9;
  for(int r=0;r<25;r++){
     int reps= (int)(1e8/(2.0*M*N*K))+1;
     double t0=now();
     for(int q=0;q<reps;q++){
      if(form==0) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,N,K,1,W,K,X,ld,1,Y,ld);
      else if(form==1) cblas_sgemm(CblasRowMajor,CblasTrans,CblasNoTrans,K,N,M,1,W,K,Y,ld,0,X,ld);
      else if(form==2) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,K,N,1,Y,ld,X,ld,1,D,K);
      else cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,K,M,N,1,X,ld,Y,M,1,D,M);
     }
     double dt=(now()-t0)/reps; if(dt<best)best=dt;}
  return 2.0*M*N*K/best*1e-9;
}
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  W=malloc(4*1024*9216);X=malloc(4L*9216*9000);Y=malloc(4L*1024*9000);D=malloc(4L*1024*9216);
  for(long i=0;i<1024*9216L;i++)W[i]=D[i]=rand()/(float)RAND_MAX;
  for(long i=0;i<9216*9000L;i++)X[i]=rand()/(float)RAND_MAX;
  for(long i=0;i<1024*9000L;i++)Y[i]=rand()/(float)RAND_MAX;
  int shapes[][2]={{16,9},{16,144},{16,288},{16,432},{32,144},{32,288},{48,144},{64,288},{64,576},{32,432}};
  for(int s=0;s<10;s++){int M=shapes[s][0],K=shapes[s][1];
    int ns=1000000/(M*K); if(ns>4000)ns=4000;
    int nl=4*1024*1024/4/K; if (nl>8000) nl=8000;
    int lds=(ns+31)/32*32+16, ldl=(nl+31)/32*32+16;
    printf("M=%3d K=%3d small n=%4d | large n=%4d :",M,K,ns,nl);
    for(int f=0;f<4;f++) printf("  f%d %5.1f/%5.1f",f,run(M,K,ns,f,lds),run(M,K,nl,f,ldl));
    printf("\n");
  }
}
